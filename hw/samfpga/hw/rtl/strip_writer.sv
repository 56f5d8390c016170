// Strip writer: the mirror of strip_reader. Takes a unit's output, an H x W x C feature map (one byte per channel)
// produced as `tiles` vertical column strips of S = W / tiles columns (no halo: every output column belongs to
// exactly one strip), one AXI-Stream packet per strip: for each strip s, row y, column x in [s*S, (s+1)*S): the C
// bytes of pixel (y, x). The stream is a byte stream packed STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]); a
// strip's last beat may be partial. The writer counts the bytes of each strip from the configuration (H * S * C):
// tkeep and tlast are not inspected.
//
// Writes: one INCR burst sequence per strip row segment (S * C contiguous bytes at BASE + (y*W + s*S)*C of the raster
// HWC frame buffer), on AXI_DW-aligned beat addresses, split at 4 KiB boundaries and at MAX_BURST beats. Segments
// may start and end anywhere (no alignment required of BASE, C or W): the first and last beat of a segment carry
// partial WSTRB, so bytes outside the segment are never written (no read-modify-write).
// Backpressure: input beats are taken only when the realignment buffer has room; a W beat is offered only when the
// buffer holds all its bytes. W beats of a burst may be offered before its AW is accepted (AXI allows it; the W side
// does not wait for AWREADY).
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). Before the first burst the writer
// finds S = W / tiles by repeated addition (W/tiles cycles). busy stays high until the B responses of all the
// frame's bursts have arrived; `done` pulses for one cycle when busy falls. err[0]: a B response with an error
// (sticky until reset, like the reader's R errors); err[1]: bad configuration (H, W, C or tiles zero, or W not a
// multiple of tiles; with ALIGNED, base or C not on whole beats): the frame is dropped and no input is taken (done
// still pulses).
// Timing closure is not assessed (combinational byte shifts of the realignment buffer).

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
	localparam int unsigned  IB = STREAM_W / 8;	// bytes per stream beat
	localparam int unsigned  LDB = $clog2(DB);
	localparam int unsigned  BUFB = DB + IB;	// realignment buffer bytes
	localparam int unsigned  CB = $clog2(BUFB + 1);
	localparam int unsigned  NB = AXI_AW - LDB + 1;	// beat counts
	localparam int unsigned  XB = 2*DIM_BITS + AXI_AW;	// strip byte counts (H * S * C)
	localparam int unsigned  BQB = $clog2(BQ_DEPTH);

	if(AXI_DW < 8 || (AXI_DW & (AXI_DW - 1)) != 0)  $error("AXI_DW must be a power of 2 >= 8");
	if(STREAM_W % 8 != 0 || STREAM_W == 0)  $error("STREAM_W must be a positive multiple of 8");
	if(MAX_BURST < 1 || MAX_BURST > 256)  $error("MAX_BURST must be 1..256");
	if(ALIGNED && STREAM_W != AXI_DW)  $error("ALIGNED needs STREAM_W = AXI_DW");

	//=======================================================================
	// Configuration and strip / row walk (AW side)

	typedef enum logic [1:0] { IDLE, DIV, RUN } state_t;
	state_t  State = IDLE;
	logic [AXI_AW-1:0]  Base;
	logic [DIM_BITS-1:0]  H, W, C, Tiles;
	logic [DIM_BITS-1:0]  S;
	logic [DIM_BITS:0]  SAcc;	// strip width; S*Tiles accumulated while dividing
	logic [DIM_BITS-1:0]  Strip, Row;	// current strip and row of the AW side
	logic [DIM_BITS:0]  X0;	// Strip * S
	logic  ErrCfg = 0, ErrResp = 0;

	// the current strip row segment: S * C bytes at column X0
	uwire [2*DIM_BITS:0]  seg_bytes = S * C;
	uwire [AXI_AW-1:0]  seg_addr = Base + AXI_AW'((Row * W + X0) * C);
	uwire [AXI_AW-1:0]  seg_end = seg_addr + AXI_AW'(seg_bytes) - 1;	// last byte
	uwire [NB-1:0]  seg_beats = NB'(seg_end >> LDB) - NB'(seg_addr >> LDB) + 1;

	// burst generator of the current segment
	logic  AwActive = 0, AwValid = 0;
	logic  AwFirst;	// the next burst is the segment's first
	logic [LDB:0]  SegFo, SegLe;	// first byte lane of the segment's first beat, end lane (1..DB) of its last
	logic [AXI_AW-1:0]  AwAddr;
	logic [7:0]  AwLen;
	logic [NB-1:0]  AwLeft;	// beats of the segment not yet issued
	uwire [NB-1:0]  page_beats = NB'((4096 - (AwAddr & 4095)) >> LDB);
	uwire [NB-1:0]  b1 = AwLeft < page_beats? AwLeft : page_beats;
	uwire [NB-1:0]  burst = b1 > MAX_BURST? NB'(MAX_BURST) : b1;

	// burst descriptors to the W side: beats, first lane of the first beat, end lane of the last beat
	logic [8:0]  BqLen[BQ_DEPTH];
	logic [LDB:0]  BqFa[BQ_DEPTH], BqLb[BQ_DEPTH];
	logic [BQB:0]  BqCnt = 0;
	logic [BQB-1:0]  BqWp = 0, BqRp = 0;
	uwire  bq_pop;

	logic [B_BITS-1:0]  BOut = 0;	// bursts accepted on AW whose B response has not arrived
	uwire  b_take = m_axi_bvalid && m_axi_bready;
	uwire  aw_take = AwValid && m_axi_awready;
	// a burst is issued (AWVALID raised, its descriptor queued for W) when the W side and the B counter have room
	uwire  aw_issue = AwActive && !AwValid && BqCnt != (BQB+1)'(BQ_DEPTH) && BOut < {B_BITS{1'b1}} - 1;

	uwire  seg_go = State == RUN && !AwActive;

	logic  InActive = 0;	// input side: the frame's strips are being taken (set below)
	logic  BusyQ = 0;
	logic  Refused = 0;	// a start refused for its configuration: busy for one cycle, so that done pulses
	assign	busy = State != IDLE || AwActive || AwValid || BqCnt != 0 || BOut != 0 || InActive || Refused;
	assign	done = BusyQ && !busy;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
			AwActive <= 0;
			AwValid <= 0;
			BqCnt <= 0;
			BqWp <= 0;
			BOut <= 0;
			BusyQ <= 0;
			Refused <= 0;
		end
		else begin
			BusyQ <= busy;
			Refused <= 0;
			BqCnt <= BqCnt + (aw_issue? 1 : 0) - (bq_pop? 1 : 0);
			BOut <= BOut + (aw_take? 1 : 0) - (b_take? 1 : 0);
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
				AwActive <= 1;
				AwFirst <= 1;
				AwAddr <= seg_addr & ~AXI_AW'(DB - 1);
				AwLeft <= seg_beats;
				SegFo <= (LDB+1)'(seg_addr & (DB - 1));
				SegLe <= (LDB+1)'(seg_end & (DB - 1)) + 1;
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
			if(aw_issue) begin
				AwValid <= 1;
				AwLen <= 8'(burst - 1);
				AwFirst <= 0;
				AwLeft <= AwLeft - burst;
				BqLen[BqWp] <= 9'(burst);
				BqFa[BqWp] <= AwFirst? SegFo : 0;
				BqLb[BqWp] <= AwLeft == burst? SegLe : (LDB+1)'(DB);
				BqWp <= BqWp + 1;
			end
			if(aw_take) begin
				AwValid <= 0;
				AwAddr <= AwAddr + AXI_AW'(DB * (int'(AwLen) + 1));
				if(AwLeft == 0)  AwActive <= 0;
			end
		end
	end

	assign	m_axi_awid = 0;
	assign	m_axi_awaddr = AwAddr;
	assign	m_axi_awlen = AwLen;
	assign	m_axi_awsize = 3'(LDB);
	assign	m_axi_awburst = 2'b01;	// INCR
	assign	m_axi_awcache = 4'b0011;
	assign	m_axi_awprot = 3'b000;
	assign	m_axi_awvalid = AwValid;
	assign	m_axi_bready = 1;

	//=======================================================================
	// Input side and W side: bytes appended to the buffer in stream order, taken from its front by W beats

	logic [8*BUFB-1:0]  Buf = '0;	// byte k at [8k +: 8], in stream order
	logic [CB-1:0]  Cnt = 0;	// valid bytes in Buf
	logic [8:0]  WBeat = 0;	// beat index within the current burst
	logic [XB-1:0]  StripBytes, StripLeft;	// H * S * C; bytes of the current input strip not yet taken
	logic [DIM_BITS-1:0]  InStrips;	// input strips of the frame not yet complete

	uwire  w_first = WBeat == 0;
	uwire  w_last = WBeat + 1 == BqLen[BqRp];
	uwire [LDB:0]  ra = w_first? BqFa[BqRp] : 0;
	uwire [LDB:0]  rb = w_last? BqLb[BqRp] : (LDB+1)'(DB);
	uwire [LDB:0]  rn = rb - ra;	// bytes of this beat written

	// ALIGNED: an input beat is a W beat (segments and strips are whole beats)
	assign	m_axi_wvalid = ALIGNED? BqCnt != 0 && InActive && s_axis_tvalid : BqCnt != 0 && Cnt >= CB'(rn);
	uwire  w_take = m_axi_wvalid && m_axi_wready;
	uwire [CB-1:0]  wn = w_take? CB'(rn) : 0;	// bytes leaving this cycle
	assign	m_axi_wdata = ALIGNED? AXI_DW'(s_axis_tdata) : AXI_DW'(Buf << (8*ra));
	assign	m_axi_wlast = w_last;
	always_comb begin
		for(int unsigned  k = 0; k < DB; k++)  m_axi_wstrb[k] = ALIGNED || (k >= ra && k < rb);
	end
	assign	bq_pop = w_take && w_last;

	uwire [XB-1:0]  in_want = StripLeft < IB? StripLeft : XB'(IB);	// bytes of this input beat
	uwire  in_strip_end = StripLeft <= IB;
	assign	s_axis_tready = ALIGNED? InActive && BqCnt != 0 && m_axi_wready : InActive && int'(Cnt) - int'(wn) + IB <= BUFB;
	uwire  in_take = s_axis_tvalid && s_axis_tready;
	uwire [8*BUFB-1:0]  in_bytes = (8*BUFB)'(s_axis_tdata) & ~({(8*BUFB){1'b1}} << (8*in_want));

	always_ff @(posedge clk) begin
		if(rst) begin
			Buf <= '0;
			Cnt <= 0;
			WBeat <= 0;
			BqRp <= 0;
			InActive <= 0;
			ErrResp <= 0;
		end
		else begin
			if(!ALIGNED) begin
				Buf <= (Buf >> (8*wn)) | (in_take? in_bytes << (8*(Cnt - wn)) : '0);
				Cnt <= Cnt - wn + (in_take? CB'(in_want) : 0);
			end
			if(w_take) begin
				WBeat <= w_last? 0 : WBeat + 1;
				if(w_last)  BqRp <= BqRp + 1;
			end
			if(State == DIV && SAcc == W) begin	// division done: S final, the frame's input may start
				InActive <= 1;
				InStrips <= Tiles;
				StripBytes <= XB'(H * S * C);
				StripLeft <= XB'(H * S * C);
			end
			if(in_take) begin
				StripLeft <= StripLeft - in_want;
				if(in_strip_end) begin
					StripLeft <= StripBytes;
					InStrips <= InStrips - 1;
					if(InStrips == 1)  InActive <= 0;
				end
			end
			if(b_take && m_axi_bresp[1])  ErrResp <= 1;
		end
	end

	assign	err = {ErrCfg, ErrResp};
endmodule
