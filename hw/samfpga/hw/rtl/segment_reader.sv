// Segment reader: the AXI side of the project's read DMAs (strip_reader.sv, access_reader.sv). It takes segment
// descriptors (a DDR byte address, a byte count, and whether the segment ends a packet) from the DMA's address walk,
// reads each segment with INCR bursts and emits the segments' bytes as one byte stream, packed STREAM_W/8 bytes per
// beat (byte 0 in tdata[7:0]); tlast on the last beat of a packet, whose tkeep may be partial.
//
// Reads: per segment, AXI_DW-aligned beat addresses covering its bytes, split at 4 KiB boundaries and at MAX_BURST
// beats. Byte realignment: segments may start and end anywhere; the bytes of a segment's first and last beat
// outside it are dropped, so the bytes read over AXI are the segment bytes rounded out to whole beats.
// Backpressure: R beats are taken only when the realignment buffer has room (rready follows the output's tready).
// A packet's end is known when its last segment's last beat arrives; while that packet's tail is still in the
// buffer, the last beat of the next packet waits (a bubble only for packets shorter than the buffer).
//
// ALIGNED = 1: every segment starts and ends on whole AXI beats and STREAM_W = AXI_DW: R beats pass straight to the
// stream, no realignment buffer (the walk must refuse frames breaking the rule).
// Timing closure is not assessed (combinational byte shifts of the realignment buffer).

module segment_reader #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// output stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per read burst (<= 256)
	int unsigned  SEG_BITS = 32,	// width of a segment's byte count
	int unsigned  DQ_DEPTH = 8,	// segment descriptors in flight between the AR and R sides (power of 2)
	bit  ALIGNED = 0
)(
	input	logic  clk,
	input	logic  rst,

	// segment descriptors from the walk (seg_bytes >= 1)
	input	logic  seg_valid,
	output	logic  seg_ready,
	input	logic [AXI_AW-1:0]  seg_addr,
	input	logic [SEG_BITS-1:0]  seg_bytes,
	input	logic  seg_last,	// the segment ends a packet
	output	logic  busy,	// segments requested, in flight or bytes not yet emitted
	output	logic  err_resp,	// an R beat with an error response (sticky until reset)

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
	localparam int unsigned  DQB = $clog2(DQ_DEPTH);

	if(AXI_DW < 8 || (AXI_DW & (AXI_DW - 1)) != 0)  $error("AXI_DW must be a power of 2 >= 8");
	if(STREAM_W % 8 != 0 || STREAM_W == 0)  $error("STREAM_W must be a positive multiple of 8");
	if(MAX_BURST < 1 || MAX_BURST > 256)  $error("MAX_BURST must be 1..256");
	if(ALIGNED && STREAM_W != AXI_DW)  $error("ALIGNED needs STREAM_W = AXI_DW");

	//=======================================================================
	// AR side: one segment at a time, split into bursts

	uwire [AXI_AW-1:0]  seg_end = seg_addr + AXI_AW'(seg_bytes) - 1;	// last byte
	uwire [NB-1:0]  seg_beats = NB'(seg_end >> LDB) - NB'(seg_addr >> LDB) + 1;

	// segment descriptors to the R side: first byte offset, beats, end offset of the last beat (1..DB), packet end
	logic [LDB:0]  DqFo[DQ_DEPTH], DqLe[DQ_DEPTH];
	logic [NB-1:0]  DqBeats[DQ_DEPTH];
	logic  DqLast[DQ_DEPTH];
	logic [DQB:0]  DqCnt = 0;
	logic [DQB-1:0]  DqWp = 0, DqRp = 0;
	uwire  dq_pop;

	// burst generator of the current segment
	logic  ArActive = 0, ArValid = 0;
	logic [AXI_AW-1:0]  ArAddr;
	logic [7:0]  ArLen;
	logic [NB-1:0]  ArLeft;	// beats of the segment not yet requested
	uwire [NB-1:0]  page_beats = NB'((4096 - (ArAddr & 4095)) >> LDB);
	uwire [NB-1:0]  b1 = ArLeft < page_beats? ArLeft : page_beats;
	uwire [NB-1:0]  burst = b1 > MAX_BURST? NB'(MAX_BURST) : b1;

	// a new segment is taken when the previous one is fully requested and the descriptor queue has room
	assign	seg_ready = !ArActive && DqCnt != (DQB+1)'(DQ_DEPTH);
	uwire  seg_go = seg_valid && seg_ready;

	logic  Tail = 0;	// the buffer holds the end of a packet (set below)
	assign	busy = ArActive || DqCnt != 0 || Tail;

	always_ff @(posedge clk) begin
		if(rst) begin
			ArActive <= 0;
			ArValid <= 0;
			DqCnt <= 0;
			DqWp <= 0;
		end
		else begin
			DqCnt <= DqCnt + (seg_go? 1 : 0) - (dq_pop? 1 : 0);
			if(seg_go) begin
				ArActive <= 1;
				ArAddr <= seg_addr & ~AXI_AW'(DB - 1);
				ArLeft <= seg_beats;
				DqFo[DqWp] <= (LDB+1)'(seg_addr & (DB - 1));
				DqLe[DqWp] <= (LDB+1)'(seg_end & (DB - 1)) + 1;
				DqBeats[DqWp] <= seg_beats;
				DqLast[DqWp] <= seg_last;
				DqWp <= DqWp + 1;
			end
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
	logic [CB-1:0]  TailLeft = 0;	// with Tail: bytes of the ending packet still in Buf (its first bytes)
	logic [NB-1:0]  RBeat = 0;	// beat index within the current segment
	logic  ErrResp = 0;

	uwire  seg_first = RBeat == 0;
	uwire  seg_end_beat = RBeat + 1 == DqBeats[DqRp];
	uwire  pkt_end_beat = seg_end_beat && DqLast[DqRp];
	uwire [LDB:0]  ra = seg_first? DqFo[DqRp] : 0;
	uwire [LDB:0]  rb = seg_end_beat? DqLe[DqRp] : (LDB+1)'(DB);
	uwire [LDB:0]  rn = rb - ra;	// bytes of this beat kept

	// output side
	uwire [CB-1:0]  want = Tail && TailLeft < OB? TailLeft : CB'(OB);
	// ALIGNED: a beat of the segment is a stream beat
	assign	m_axis_tvalid = ALIGNED? DqCnt != 0 && m_axi_rvalid : Cnt >= want;
	uwire  o_take = m_axis_tvalid && m_axis_tready;
	uwire [CB-1:0]  on = o_take? want : 0;	// bytes leaving this cycle
	assign	m_axis_tdata = ALIGNED? STREAM_W'(m_axi_rdata) : Buf[STREAM_W-1:0];
	assign	m_axis_tlast = ALIGNED? pkt_end_beat : Tail && TailLeft <= OB;
	always_comb begin
		for(int unsigned  k = 0; k < OB; k++)  m_axis_tkeep[k] = ALIGNED || k < want;
	end

	assign	m_axi_rready = ALIGNED? DqCnt != 0 && m_axis_tready
		: DqCnt != 0 && int'(Cnt) - int'(on) + DB <= BUFB && !(Tail && pkt_end_beat);
	uwire  r_take = m_axi_rvalid && m_axi_rready;
	assign	dq_pop = r_take && seg_end_beat;

	uwire [8*BUFB-1:0]  kept = (8*BUFB)'(m_axi_rdata >> (8*ra)) & ~({(8*BUFB){1'b1}} << (8*rn));
	always_ff @(posedge clk) begin
		if(rst) begin
			Buf <= '0;
			Cnt <= 0;
			Tail <= 0;
			TailLeft <= 0;
			RBeat <= 0;
			DqRp <= 0;
			ErrResp <= 0;
		end
		else begin
			if(!ALIGNED) begin
				Buf <= (Buf >> (8*on)) | (r_take? kept << (8*(Cnt - on)) : '0);
				Cnt <= Cnt - on + (r_take? CB'(rn) : 0);
				// a packet's tail: everything in the buffer once its last byte is in (no earlier packet is
				// pending: the beat that would end a second one waits while Tail is set)
				if(r_take && pkt_end_beat) begin
					Tail <= 1;
					TailLeft <= Cnt - on + CB'(rn);
				end
				else if(o_take && Tail) begin
					TailLeft <= TailLeft - want;
					if(m_axis_tlast)  Tail <= 0;
				end
			end
			if(r_take) begin
				RBeat <= seg_end_beat? 0 : RBeat + 1;
				if(seg_end_beat)  DqRp <= DqRp + 1;
				if(m_axi_rresp[1])  ErrResp <= 1;
			end
		end
	end

	assign	err_resp = ErrResp;
endmodule
