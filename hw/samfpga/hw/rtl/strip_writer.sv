// Strip writer: the mirror of strip_reader. Takes a unit's output, an H x W x C feature map (one byte per channel)
// produced as `tiles` vertical column strips of S = W / tiles columns (no halo: every output column belongs to
// exactly one strip), one AXI-Stream packet per strip: for each strip s, row y, column x in [s*S, (s+1)*S): the C
// bytes of pixel (y, x). The stream is a byte stream packed STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]); a
// strip's last beat may be partial. The writer counts the bytes of each strip from the configuration (H * S * C):
// tkeep and tlast are not inspected.
//
// Writes: one segment per strip row (S * C contiguous bytes at BASE + (y*W + s*S)*C of the raster HWC frame buffer),
// written by segment_writer.sv (INCR bursts on AXI_DW-aligned beats, split at 4 KiB and MAX_BURST; partial WSTRB on
// a segment's first and last beat, so no alignment is required of BASE, C or W and bytes outside the segments are
// never written; W beats may precede their AW).
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). Before the first burst the writer
// finds S = W / tiles by repeated addition (W/tiles cycles). busy stays high until the B responses of all the
// frame's bursts have arrived; `done` pulses for one cycle when busy falls. err[0]: a B response with an error
// (sticky until reset, like the reader's R errors); err[1]: bad configuration (H, W, C or tiles zero, or W not a
// multiple of tiles; with ALIGNED, base or C not on whole beats): the frame is dropped and no input is taken (done
// still pulses).

module strip_writer #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// input stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per write burst (<= 256)
	int unsigned  DIM_BITS = 16,	// width of H, W, C, tiles
	int unsigned  BQ_DEPTH = 8,	// bursts issued on AW whose W beats are not all sent (power of 2)
	int unsigned  B_BITS = 8,	// counter of bursts awaiting their B response
	// 1: every row segment on whole AXI beats (BASE and C multiples of AXI_DW/8; with STREAM_W = AXI_DW): input beats
	// pass straight to W, no realignment buffer, all strobes set (a frame breaking the rule is refused: err[1])
	bit  ALIGNED = 0
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [AXI_AW-1:0]  cfg_base,
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	input	logic [DIM_BITS-1:0]  cfg_c,
	input	logic [DIM_BITS-1:0]  cfg_tiles,
	output	logic  busy,
	output	logic  done,
	output	logic [1:0]  err,

	input	logic [STREAM_W-1:0]  s_axis_tdata,
	input	logic [STREAM_W/8-1:0]  s_axis_tkeep,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic  m_axi_awid,
	output	logic [AXI_AW-1:0]  m_axi_awaddr,
	output	logic [7:0]  m_axi_awlen,
	output	logic [2:0]  m_axi_awsize,
	output	logic [1:0]  m_axi_awburst,
	output	logic [3:0]  m_axi_awcache,
	output	logic [2:0]  m_axi_awprot,
	output	logic  m_axi_awvalid,
	input	logic  m_axi_awready,
	output	logic [AXI_DW-1:0]  m_axi_wdata,
	output	logic [AXI_DW/8-1:0]  m_axi_wstrb,
	output	logic  m_axi_wlast,
	output	logic  m_axi_wvalid,
	input	logic  m_axi_wready,
	input	logic  m_axi_bid,
	input	logic [1:0]  m_axi_bresp,
	input	logic  m_axi_bvalid,
	output	logic  m_axi_bready
);
	localparam int unsigned  DB = AXI_DW / 8;	// bytes per AXI beat
	localparam int unsigned  SB = 2*DIM_BITS + 1;	// segment byte counts (S * C)
	localparam int unsigned  XB = 2*DIM_BITS + AXI_AW;	// strip byte counts (H * S * C)

	//=======================================================================
	// Configuration and strip / row walk

	typedef enum logic [1:0] { IDLE, DIV, RUN } state_t;
	state_t  State = IDLE;
	logic [AXI_AW-1:0]  Base;
	logic [DIM_BITS-1:0]  H, W, C, Tiles;
	logic [DIM_BITS-1:0]  S;
	logic [DIM_BITS:0]  SAcc;	// strip width; S*Tiles accumulated while dividing
	logic [DIM_BITS-1:0]  Strip, Row;	// current strip and row of the walk
	logic [DIM_BITS:0]  X0;	// Strip * S
	logic  ErrCfg = 0;

	uwire  seg_ready, seg_busy, err_resp;
	uwire  seg_valid = State == RUN;
	uwire  seg_go = seg_valid && seg_ready;
	uwire  in_go = State == DIV && SAcc == W;	// division done: S final, the frame's input may start

	logic  BusyQ = 0;
	logic  Refused = 0;	// a start refused for its configuration: busy for one cycle, so that done pulses
	assign	busy = State != IDLE || seg_busy || Refused;
	assign	done = BusyQ && !busy;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
			BusyQ <= 0;
			Refused <= 0;
		end
		else begin
			BusyQ <= busy;
			Refused <= 0;
			unique case(State)
			IDLE: if(start && !busy) begin
				Base <= cfg_base;
				H <= cfg_h;
				W <= cfg_w;
				C <= cfg_c;
				Tiles <= cfg_tiles;
				S <= 0;
				SAcc <= 0;
				Strip <= 0;
				Row <= 0;
				X0 <= 0;
				ErrCfg <= 0;
				if(cfg_h == 0 || cfg_w == 0 || cfg_c == 0 || cfg_tiles == 0 ||
				   (ALIGNED && ((cfg_base & AXI_AW'(DB - 1)) != 0 || (cfg_c & DIM_BITS'(DB - 1)) != 0))) begin
					ErrCfg <= 1;
					Refused <= 1;
				end
				else  State <= DIV;
			end
			DIV: begin	// S = W / Tiles by repeated addition
				if(SAcc == W)  State <= RUN;
				else if(SAcc > W) begin
					ErrCfg <= 1;
					State <= IDLE;
				end
				else begin
					SAcc <= SAcc + Tiles;
					S <= S + 1;
				end
			end
			RUN: if(seg_go) begin
				if(Row + 1 == H) begin
					Row <= 0;
					Strip <= Strip + 1;
					X0 <= X0 + S;
					if(Strip + 1 == Tiles)  State <= IDLE;
				end
				else  Row <= Row + 1;
			end
			default: ;
			endcase
		end
	end

	segment_writer #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(STREAM_W), .MAX_BURST(MAX_BURST), .SEG_BITS(SB), .PKT_BITS(XB),
		.NPKT_BITS(DIM_BITS), .BQ_DEPTH(BQ_DEPTH), .B_BITS(B_BITS), .ALIGNED(ALIGNED)
	) seg (
		.clk, .rst,
		.in_go, .in_pkt_bytes(XB'(H * S * C)), .in_pkts(Tiles),
		.seg_valid, .seg_ready,
		.seg_addr(Base + AXI_AW'((Row * W + X0) * C)),
		.seg_bytes(SB'(S * C)),
		.busy(seg_busy), .err_resp,
		.s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
		.m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awcache, .m_axi_awprot,
		.m_axi_awvalid, .m_axi_awready,
		.m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
		.m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
	);

	assign	err = {ErrCfg, err_resp};
endmodule
