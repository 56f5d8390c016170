// Strip reader: reads an H x W x C feature map (HWC, one byte per channel, row-major) from DDR as `tiles` vertical
// column strips of S = W / tiles columns, each with `halo` extra columns on each interior side (clipped at the image
// edges), and emits every strip as one AXI-Stream packet: for each strip s, row y, column x in
// [max(0, s*S - halo), min(W, (s+1)*S + halo)): the C bytes of pixel (y, x). The stream is a byte stream packed
// STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]); tlast on the last beat of a strip, whose tkeep may be partial.
//
// Reads: one segment per strip row ((hi - lo) * C contiguous bytes at BASE + (y*W + lo)*C), read by
// segment_reader.sv (INCR bursts on AXI_DW-aligned beats, split at 4 KiB and MAX_BURST; byte realignment, so no
// alignment is required of BASE, C or W; the bytes read over AXI are the segments rounded out to whole beats).
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). Before the first request the reader
// finds S = W / tiles by repeated addition (W/tiles cycles). err[0]: an R beat with an error response;
// err[1]: bad configuration (H, W, C or tiles zero, W not a multiple of tiles, or with ALIGNED base or C not on whole
// beats): the frame is dropped.

module strip_reader #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// output stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per read burst (<= 256)
	int unsigned  DIM_BITS = 16,	// width of H, W, C, tiles, halo
	int unsigned  DQ_DEPTH = 8,	// segment descriptors in flight between the AR and R sides (power of 2)
	// 1: every row segment on whole AXI beats (BASE and C multiples of AXI_DW/8; with STREAM_W = AXI_DW): R beats
	// pass straight to the stream, no realignment buffer (a frame breaking the rule is refused: err[1])
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
	input	logic [DIM_BITS-1:0]  cfg_halo,
	output	logic  busy,
	output	logic [1:0]  err,

	output	logic  m_axi_arid,
	output	logic [AXI_AW-1:0]  m_axi_araddr,
	output	logic [7:0]  m_axi_arlen,
	output	logic [2:0]  m_axi_arsize,
	output	logic [1:0]  m_axi_arburst,
	output	logic [3:0]  m_axi_arcache,
	output	logic [2:0]  m_axi_arprot,
	output	logic  m_axi_arvalid,
	input	logic  m_axi_arready,
	input	logic  m_axi_rid,
	input	logic [AXI_DW-1:0]  m_axi_rdata,
	input	logic [1:0]  m_axi_rresp,
	input	logic  m_axi_rlast,
	input	logic  m_axi_rvalid,
	output	logic  m_axi_rready,

	output	logic [STREAM_W-1:0]  m_axis_tdata,
	output	logic [STREAM_W/8-1:0]  m_axis_tkeep,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  DB = AXI_DW / 8;	// bytes per AXI beat
	localparam int unsigned  SB = 2*DIM_BITS + 1;	// segment byte counts ((hi - lo) * C)

	//=======================================================================
	// Configuration and strip / row walk

	typedef enum logic [1:0] { IDLE, DIV, RUN } state_t;
	state_t  State = IDLE;
	logic [AXI_AW-1:0]  Base;
	logic [DIM_BITS-1:0]  H, W, C, Tiles, Halo;
	logic [DIM_BITS-1:0]  S;
	logic [DIM_BITS:0]  SAcc;	// strip width; S*Tiles accumulated while dividing
	logic [DIM_BITS-1:0]  Strip, Row;	// current strip and row of the walk
	logic [DIM_BITS:0]  X0;	// Strip * S
	logic  ErrCfg = 0;

	// strip columns [lo, hi) of the current strip
	uwire [DIM_BITS:0]  lo = X0 > Halo? X0 - Halo : 0;
	uwire [DIM_BITS+1:0]  hi_raw = X0 + S + Halo;
	uwire [DIM_BITS:0]  hi = hi_raw > W? W : hi_raw;

	uwire  seg_ready, seg_busy, err_resp;
	uwire  seg_valid = State == RUN;
	uwire  seg_go = seg_valid && seg_ready;
	assign	busy = State != IDLE || seg_busy;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
		end
		else begin
			unique case(State)
			IDLE: if(start && !busy) begin
				Base <= cfg_base;
				H <= cfg_h;
				W <= cfg_w;
				C <= cfg_c;
				Tiles <= cfg_tiles;
				Halo <= cfg_halo;
				S <= 0;
				SAcc <= 0;
				Strip <= 0;
				Row <= 0;
				X0 <= 0;
				ErrCfg <= 0;
				if(cfg_h == 0 || cfg_w == 0 || cfg_c == 0 || cfg_tiles == 0)  ErrCfg <= 1;
				else if(ALIGNED && ((cfg_base & AXI_AW'(DB - 1)) != 0 || (cfg_c & DIM_BITS'(DB - 1)) != 0))  ErrCfg <= 1;
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

	segment_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(STREAM_W), .MAX_BURST(MAX_BURST), .SEG_BITS(SB),
		.DQ_DEPTH(DQ_DEPTH), .ALIGNED(ALIGNED)
	) seg (
		.clk, .rst,
		.seg_valid, .seg_ready,
		.seg_addr(Base + AXI_AW'((Row * W + lo) * C)),
		.seg_bytes(SB'((hi - lo) * C)),
		.seg_last(Row + 1 == H),	// a strip is a packet
		.busy(seg_busy), .err_resp,
		.m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arcache, .m_axi_arprot,
		.m_axi_arvalid, .m_axi_arready,
		.m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready,
		.m_axis_tdata, .m_axis_tkeep, .m_axis_tlast, .m_axis_tvalid, .m_axis_tready
	);

	assign	err = {ErrCfg, err_resp};
endmodule
