// Segment writer: the AXI side of the project's write DMAs (strip_writer.sv, access_writer.sv). It takes segment
// descriptors (a DDR byte address and a byte count) from the DMA's address walk and writes the bytes of its input
// stream to them in order: the stream is a byte stream packed STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]) in
// packets of `in_pkt_bytes` bytes (`in_pkts` of them per frame), whose last beat may be partial; tkeep and tlast are
// not inspected.
//
// Writes: per segment, INCR bursts on AXI_DW-aligned beat addresses, split at 4 KiB boundaries and at MAX_BURST
// beats. Segments may start and end anywhere: the first and last beat of a segment carry partial WSTRB, so bytes
// outside the segment are never written (no read-modify-write).
// Backpressure: input beats are taken only when the realignment buffer has room; a W beat is offered only when the
// buffer holds all its bytes. W beats of a burst may be offered before its AW is accepted (AXI allows it; the W side
// does not wait for AWREADY).
//
// ALIGNED = 1: every segment on whole AXI beats and STREAM_W = AXI_DW: input beats pass straight to W, all strobes
// set (the walk must refuse frames breaking the rule).
// Timing closure is not assessed (combinational byte shifts of the realignment buffer).

module segment_writer #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// input stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per write burst (<= 256)
	int unsigned  SEG_BITS = 32,	// width of a segment's byte count
	int unsigned  PKT_BITS = 48,	// width of a packet's byte count
	int unsigned  NPKT_BITS = 16,	// width of the packet count
	int unsigned  BQ_DEPTH = 8,	// bursts issued on AW whose W beats are not all sent (power of 2)
	int unsigned  B_BITS = 8,	// counter of bursts awaiting their B response
	bit  ALIGNED = 0
)(
	input	logic  clk,
	input	logic  rst,

	// the frame's input: `in_pkts` packets of `in_pkt_bytes` bytes (both >= 1), taken from a pulse on in_go
	input	logic  in_go,
	input	logic [PKT_BITS-1:0]  in_pkt_bytes,
	input	logic [NPKT_BITS-1:0]  in_pkts,

	// segment descriptors from the walk (seg_bytes >= 1)
	input	logic  seg_valid,
	output	logic  seg_ready,
	input	logic [AXI_AW-1:0]  seg_addr,
	input	logic [SEG_BITS-1:0]  seg_bytes,
	output	logic  busy,	// input not all taken, bursts to issue, W beats or B responses outstanding
	output	logic  err_resp,	// a B response with an error (sticky until reset)

	input	logic [STREAM_W-1:0]  s_axis_tdata,
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
	localparam int unsigned  BQB = $clog2(BQ_DEPTH);

	if(AXI_DW < 8 || (AXI_DW & (AXI_DW - 1)) != 0)  $error("AXI_DW must be a power of 2 >= 8");
	if(STREAM_W % 8 != 0 || STREAM_W == 0)  $error("STREAM_W must be a positive multiple of 8");
	if(MAX_BURST < 1 || MAX_BURST > 256)  $error("MAX_BURST must be 1..256");
	if(ALIGNED && STREAM_W != AXI_DW)  $error("ALIGNED needs STREAM_W = AXI_DW");

	//=======================================================================
	// AW side: one segment at a time, split into bursts

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

	assign	seg_ready = !AwActive;
	uwire  seg_go = seg_valid && seg_ready;

	logic  InActive = 0;	// the frame's input is being taken (set below)
	assign	busy = AwActive || AwValid || BqCnt != 0 || BOut != 0 || InActive;

	always_ff @(posedge clk) begin
		if(rst) begin
			AwActive <= 0;
			AwValid <= 0;
			BqCnt <= 0;
			BqWp <= 0;
			BOut <= 0;
		end
		else begin
			BqCnt <= BqCnt + (aw_issue? 1 : 0) - (bq_pop? 1 : 0);
			BOut <= BOut + (aw_take? 1 : 0) - (b_take? 1 : 0);
			if(seg_go) begin
				AwActive <= 1;
				AwFirst <= 1;
				AwAddr <= seg_addr & ~AXI_AW'(DB - 1);
				AwLeft <= seg_beats;
				SegFo <= (LDB+1)'(seg_addr & (DB - 1));
				SegLe <= (LDB+1)'(seg_end & (DB - 1)) + 1;
			end
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
	logic [PKT_BITS-1:0]  PktBytes, PktLeft;	// bytes per packet; bytes of the current packet not yet taken
	logic [NPKT_BITS-1:0]  InPkts;	// packets of the frame not yet complete
	logic  ErrResp = 0;

	uwire  w_first = WBeat == 0;
	uwire  w_last = WBeat + 1 == BqLen[BqRp];
	uwire [LDB:0]  ra = w_first? BqFa[BqRp] : 0;
	uwire [LDB:0]  rb = w_last? BqLb[BqRp] : (LDB+1)'(DB);
	uwire [LDB:0]  rn = rb - ra;	// bytes of this beat written

	// ALIGNED: an input beat is a W beat (segments and packets are whole beats)
	assign	m_axi_wvalid = ALIGNED? BqCnt != 0 && InActive && s_axis_tvalid : BqCnt != 0 && Cnt >= CB'(rn);
	uwire  w_take = m_axi_wvalid && m_axi_wready;
	uwire [CB-1:0]  wn = w_take? CB'(rn) : 0;	// bytes leaving this cycle
	assign	m_axi_wdata = ALIGNED? AXI_DW'(s_axis_tdata) : AXI_DW'(Buf << (8*ra));
	assign	m_axi_wlast = w_last;
	always_comb begin
		for(int unsigned  k = 0; k < DB; k++)  m_axi_wstrb[k] = ALIGNED || (k >= ra && k < rb);
	end
	assign	bq_pop = w_take && w_last;

	uwire [PKT_BITS-1:0]  in_want = PktLeft < IB? PktLeft : PKT_BITS'(IB);	// bytes of this input beat
	uwire  in_pkt_end = PktLeft <= IB;
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
			if(in_go) begin
				InActive <= 1;
				InPkts <= in_pkts;
				PktBytes <= in_pkt_bytes;
				PktLeft <= in_pkt_bytes;
			end
			if(in_take) begin
				PktLeft <= PktLeft - in_want;
				if(in_pkt_end) begin
					PktLeft <= PktBytes;
					InPkts <= InPkts - 1;
					if(InPkts == 1)  InActive <= 0;
				end
			end
			if(b_take && m_axi_bresp[1])  ErrResp <= 1;
		end
	end

	assign	err_resp = ErrResp;
endmodule
