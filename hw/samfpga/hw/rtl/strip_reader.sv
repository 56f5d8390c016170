// Strip reader: reads an H x W x C feature map (HWC, one byte per channel, row-major) from DDR as `tiles` vertical
// column strips of S = W / tiles columns, each with `halo` extra columns on each interior side (clipped at the image
// edges), and emits every strip as one AXI-Stream packet: for each strip s, row y, column x in
// [max(0, s*S - halo), min(W, (s+1)*S + halo)): the C bytes of pixel (y, x). The stream is a byte stream packed
// STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]); tlast on the last beat of a strip, whose tkeep may be partial.
//
// Reads: one INCR burst sequence per strip row segment ((hi - lo) * C contiguous bytes at BASE + (y*W + lo)*C),
// on AXI_DW-aligned beat addresses, split at 4 KiB boundaries and at MAX_BURST beats. Byte realignment: segments
// may start and end anywhere (no alignment required of BASE, C or W); the bytes of a segment's first and last beat
// outside it are dropped, so the bytes read over AXI are the segment bytes rounded out to whole beats.
// Backpressure: R beats are taken only when the realignment buffer has room (rready follows the output's tready).
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). Before the first request the reader
// finds S = W / tiles by repeated addition (W/tiles cycles). err[0]: an R beat with an error response;
// err[1]: bad configuration (H, W, C or tiles zero, W not a multiple of tiles, or with ALIGNED base or C not on whole
// beats): the frame is dropped.
// Timing closure is not assessed (combinational byte shifts of the realignment buffer).

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
	localparam int unsigned  OB = STREAM_W / 8;	// bytes per stream beat
	localparam int unsigned  LDB = $clog2(DB);
	localparam int unsigned  BUFB = DB + OB;	// realignment buffer bytes
	localparam int unsigned  CB = $clog2(BUFB + 1);
	localparam int unsigned  NB = AXI_AW - LDB + 1;	// beat counts
	localparam int unsigned  XB = 2*DIM_BITS + AXI_AW;	// strip byte counts (H * cols * C)
	localparam int unsigned  DQB = $clog2(DQ_DEPTH);

	if(AXI_DW < 8 || (AXI_DW & (AXI_DW - 1)) != 0)  $error("AXI_DW must be a power of 2 >= 8");
	if(STREAM_W % 8 != 0 || STREAM_W == 0)  $error("STREAM_W must be a positive multiple of 8");
	if(MAX_BURST < 1 || MAX_BURST > 256)  $error("MAX_BURST must be 1..256");
	if(ALIGNED && STREAM_W != AXI_DW)  $error("ALIGNED needs STREAM_W = AXI_DW");

	//=======================================================================
	// Configuration and strip / row walk (AR side)

	typedef enum logic [1:0] { IDLE, DIV, RUN } state_t;
	state_t  State = IDLE;
	logic [AXI_AW-1:0]  Base;
	logic [DIM_BITS-1:0]  H, W, C, Tiles, Halo;
	logic [DIM_BITS-1:0]  S;
	logic [DIM_BITS:0]  SAcc;	// strip width; S*Tiles accumulated while dividing
	logic [DIM_BITS-1:0]  Strip, Row;	// current strip and row of the AR side
	logic [DIM_BITS:0]  X0;	// Strip * S
	logic  ErrCfg = 0, ErrResp = 0;

	// strip columns [lo, hi) of the current strip
	uwire [DIM_BITS:0]  lo = X0 > Halo? X0 - Halo : 0;
	uwire [DIM_BITS+1:0]  hi_raw = X0 + S + Halo;
	uwire [DIM_BITS:0]  hi = hi_raw > W? W : hi_raw;
	uwire [2*DIM_BITS:0]  seg_bytes = (hi - lo) * C;
	uwire [AXI_AW-1:0]  seg_addr = Base + AXI_AW'((Row * W + lo) * C);
	uwire [AXI_AW-1:0]  seg_end = seg_addr + AXI_AW'(seg_bytes) - 1;	// last byte
	uwire [NB-1:0]  seg_beats = NB'(seg_end >> LDB) - NB'(seg_addr >> LDB) + 1;

	// segment descriptors to the R side: first byte offset, beats, end offset of the last beat (1..DB)
	logic [LDB:0]  DqFo[DQ_DEPTH], DqLe[DQ_DEPTH];
	logic [NB-1:0]  DqBeats[DQ_DEPTH];
	logic [DQB:0]  DqCnt = 0;
	logic [DQB-1:0]  DqWp = 0, DqRp = 0;
	uwire  dq_pop;

	// strip byte counts to the output side
	logic [XB-1:0]  SqBytes[DQ_DEPTH];
	logic [DQB:0]  SqCnt = 0;
	logic [DQB-1:0]  SqWp = 0, SqRp = 0;
	uwire  sq_pop;

	// burst generator of the current segment
	logic  ArActive = 0, ArValid = 0;
	logic [AXI_AW-1:0]  ArAddr;
	logic [7:0]  ArLen;
	logic [NB-1:0]  ArLeft;	// beats of the segment not yet requested
	uwire [NB-1:0]  page_beats = NB'((4096 - (ArAddr & 4095)) >> LDB);
	uwire [NB-1:0]  b1 = ArLeft < page_beats? ArLeft : page_beats;
	uwire [NB-1:0]  burst = b1 > MAX_BURST? NB'(MAX_BURST) : b1;

	// a new segment starts when the previous one is fully requested and both queues have room
	uwire  seg_go = State == RUN && !ArActive && DqCnt != (DQB+1)'(DQ_DEPTH)
		&& (Row != 0 || SqCnt != (DQB+1)'(DQ_DEPTH));

	logic  OutDone;	// the output side emitted the frame's last strip (set below)
	assign	busy = State != IDLE || ArActive || DqCnt != 0 || SqCnt != 0;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
			ArActive <= 0;
			ArValid <= 0;
			DqCnt <= 0;
			DqWp <= 0;
			SqCnt <= 0;
			SqWp <= 0;
		end
		else begin
			DqCnt <= DqCnt + (seg_go? 1 : 0) - (dq_pop? 1 : 0);
			SqCnt <= SqCnt + (seg_go && Row == 0? 1 : 0) - (sq_pop? 1 : 0);
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
				ArActive <= 1;
				ArAddr <= seg_addr & ~AXI_AW'(DB - 1);
				ArLeft <= seg_beats;
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
			if(ArActive && !ArValid) begin
				ArValid <= 1;
				ArLen <= 8'(burst - 1);
			end
			if(ArValid && m_axi_arready) begin
				ArValid <= 0;
				ArAddr <= ArAddr + AXI_AW'(DB * (int'(ArLen) + 1));
				ArLeft <= ArLeft - NB'(ArLen) - 1;
				if(ArLeft == NB'(ArLen) + 1)  ArActive <= 0;
			end
			if(seg_go) begin
				DqFo[DqWp] <= (LDB+1)'(seg_addr & (DB - 1));
				DqLe[DqWp] <= (LDB+1)'(seg_end & (DB - 1)) + 1;
				DqBeats[DqWp] <= seg_beats;
				DqWp <= DqWp + 1;
				if(Row == 0) begin
					SqBytes[SqWp] <= XB'(H * seg_bytes);
					SqWp <= SqWp + 1;
				end
			end
		end
	end

	assign	m_axi_arid = 0;
	assign	m_axi_araddr = ArAddr;
	assign	m_axi_arlen = ArLen;
	assign	m_axi_arsize = 3'(LDB);
	assign	m_axi_arburst = 2'b01;	// INCR
	assign	m_axi_arcache = 4'b0011;
	assign	m_axi_arprot = 3'b000;
	assign	m_axi_arvalid = ArValid;

	//=======================================================================
	// R side: drop the bytes of a segment's first / last beat outside the segment, append the rest to the buffer

	logic [8*BUFB-1:0]  Buf = '0;	// byte k at [8k +: 8], in stream order
	logic [CB-1:0]  Cnt = 0;	// valid bytes in Buf
	logic [NB-1:0]  RBeat = 0;	// beat index within the current segment
	logic [XB-1:0]  Emitted = 0;	// bytes of the current strip already sent

	uwire  seg_first = RBeat == 0;
	uwire  seg_last = RBeat + 1 == DqBeats[DqRp];
	uwire [LDB:0]  ra = seg_first? DqFo[DqRp] : 0;
	uwire [LDB:0]  rb = seg_last? DqLe[DqRp] : (LDB+1)'(DB);
	uwire [LDB:0]  rn = rb - ra;	// bytes of this beat kept

	// output side
	uwire [XB-1:0]  strip_left = SqBytes[SqRp] - Emitted;
	uwire [CB-1:0]  want = strip_left < OB? CB'(strip_left) : CB'(OB);
	// ALIGNED: a beat of the segment is a stream beat (segments and strips are whole beats)
	assign	m_axis_tvalid = ALIGNED? SqCnt != 0 && DqCnt != 0 && m_axi_rvalid : SqCnt != 0 && Cnt >= want;
	uwire  o_take = m_axis_tvalid && m_axis_tready;
	uwire [CB-1:0]  on = o_take? want : 0;	// bytes leaving this cycle
	assign	m_axis_tdata = ALIGNED? STREAM_W'(m_axi_rdata) : Buf[STREAM_W-1:0];
	assign	m_axis_tlast = strip_left <= OB;
	always_comb begin
		for(int unsigned  k = 0; k < OB; k++)  m_axis_tkeep[k] = k < want;
	end
	assign	sq_pop = o_take && m_axis_tlast;

	assign	m_axi_rready = ALIGNED? SqCnt != 0 && DqCnt != 0 && m_axis_tready : DqCnt != 0 && int'(Cnt) - int'(on) + DB <= BUFB;
	uwire  r_take = m_axi_rvalid && m_axi_rready;
	assign	dq_pop = r_take && seg_last;

	uwire [8*BUFB-1:0]  kept = (8*BUFB)'(m_axi_rdata >> (8*ra)) & ~({(8*BUFB){1'b1}} << (8*rn));
	always_ff @(posedge clk) begin
		if(rst) begin
			Buf <= '0;
			Cnt <= 0;
			RBeat <= 0;
			DqRp <= 0;
			SqRp <= 0;
			Emitted <= 0;
			ErrResp <= 0;
		end
		else begin
			if(!ALIGNED) begin
				Buf <= (Buf >> (8*on)) | (r_take? kept << (8*(Cnt - on)) : '0);
				Cnt <= Cnt - on + (r_take? CB'(rn) : 0);
			end
			if(r_take) begin
				RBeat <= seg_last? 0 : RBeat + 1;
				if(seg_last)  DqRp <= DqRp + 1;
				if(m_axi_rresp[1])  ErrResp <= 1;
			end
			if(o_take) begin
				Emitted <= m_axis_tlast? 0 : Emitted + XB'(OB);
				if(m_axis_tlast)  SqRp <= SqRp + 1;
			end
		end
	end

	assign	err = {ErrCfg, ErrResp};
endmodule
