// Token-batched matrix-vector unit: a MW -> MH linear layer whose weights stay in DDR. It runs B tokens per
// pass over the weights, so every weight word crosses the AXI read port once per B tokens (finn-rtllib's MVU
// replays on-chip weights per token instead). No weights are kept on chip beyond a read FIFO.
//
// Frame: N iterations (the N identical blocks of a rolled stage) x T tokens. Iteration i reads its weights at
// BASE + i*STRIDE. The tokens of an iteration are cut into batches of B (the last one partial when B does not
// divide T); a batch never spans two iterations.
//
// Streams (FINN's MVU order, element 0 in the LSBs):
//   s_axis: per token SF = MW/SIMD beats of SIMD activations; beat sf holds inputs sf*SIMD .. sf*SIMD+SIMD-1.
//   m_axis: per token NF = MH/PE beats of PE values: accumulators (ACC_BITS two's complement, exact: the
//           accumulator is sized so the result fits), or with RQ = 1 requantised OUT_BITS values; beat nf holds
//           outputs nf*PE .. nf*PE+PE-1. Tokens leave in input order.
// Schedule of one pass (batch of nb <= B tokens): for nf < NF, for sf < SF, for b < nb: one cycle applies weight
// word (nf, sf) to token b's input beat sf (SIMD x PE MACs), so the word is fetched once and used nb times.
// Input beats of a batch are kept in one of two banks (the next batch loads while this one computes); partial sums
// of the current output fold in a B-deep accumulator RAM; finished sums go to one of two output banks of B x NF
// beats, drained in token order while the next pass computes.
// With RQ = 1 each finished sum is requantised before the output banks (OUT_BITS instead of ACC_BITS per value:
// the banks shrink by ACC_BITS/OUT_BITS): y = clip((acc * scale + bias) >>> shift), the channel's parameters read
// from DDR in PW words ahead of each output fold's weight words (one DDR stream, so each iteration of a rolled
// stage brings its own parameters); the PW cycles that take them apply no MACs.
// Weights in DDR (samfpga.hw.sim.token_batch_mvu.pack_weights): per iteration the words (nf, sf) in that order as
// one little-endian bit string (with RQ, fold nf's PW parameter words before its SF weight words), word element p*SIMD + s = weight of output nf*PE + p, input sf*SIMD + s; the
// string is read as BEATS = ceil(NF*SF*PE*SIMD*W_BITS / AXI_DW) beats of INCR bursts of at most MAX_BURST beats;
// BASE and STRIDE must be multiples of MAX_BURST*AXI_DW/8 (<= 4096) so that no burst crosses a 4 KiB boundary.
// Runtime configuration (cfg_*): sampled with the first input beat of every frame, so the driver writes it
// before starting the input stream and may change it between frames. cfg_base is run-time because the driver's
// DDR buffer address is only known then; STRIDE, N and T too, so one bitstream serves several layouts and image
// sizes (T) without re-synthesis; B and the layer's shape are parameters (they size the on-chip buffers).
// With RT_SHAPE = 1 the shape is run-time too (the layer-sequential engine runs every layer on one unit): MW, MH and
// B then size the buffers (B tokens of MW inputs, B x MH outputs) and a frame runs SF' = cfg_sf input beats, NF' = cfg_nf output folds and
// batches of B' = cfg_batch tokens, exactly as a unit built at MW = SF'*SIMD, MH = NF'*PE, B = B' would (the same
// DDR layout, streams and schedule). It needs words of whole AXI beats. The buffers bound B' <= B, B'*SF' <= B*SF
// and B'*NF' <= B*NF (a layer wider than MW runs with fewer tokens per pass); a shape out of range (or 0) raises
// err[1] and the frame runs at the parameters' shape.
// With RAW_OUT = 1 (needs RQ and RT_SHAPE) a frame may bypass the requantiser (cfg_raw = 1; the engine's QK^T,
// whose sums go to the softmax unrequantised): each finished sum leaves as K*OUT_BITS bits, K = ceil(RAW_BITS /
// OUT_BITS) (the accumulator's low bits, sign-extended: exact for the sums of a layer that fit RAW_BITS), the PE
// sums of a fold as K beats of the output stream (beat k = bits k*PE*OUT_BITS .. of the PE sums of K*OUT_BITS bits
// each, element 0 in the LSBs), at bank address (b*NF' + nf)*K + k. DDR then holds no parameter words (the layout
// of RQ = 0). The output banks have one write port, so after an issue that finishes a sum the next such issue waits
// K cycles (the others run on): a pass of SF' = 1 issues one MAC cycle in K. The banks bound B'*NF'*K <= B*NF.
// A raw frame with cfg_unsigned = 1 (which clips only requantised outputs) sends each sum's low OUT_BITS bits instead,
// a fold as one beat, as a requantised frame does (K = 1 for the frame: no waits; the engine's V transpose, whose
// sums of one-hot inputs are V's 8-bit values).
// With RT_SHAPE = 1 each frame also picks its requantised outputs' range: cfg_unsigned = 1 clips to
// [0, 2^OUT_BITS - 1], 0 to the signed range (without RT_SHAPE, OUT_SIGNED decides), so INT8 and UINT8 layers run
// on one unit; the flag travels with each pass like cfg_raw.
// Read requests are only issued for FIFO space already reserved, so rready stays high and a stalled R channel
// only delays the compute. err[0]: an R beat carried an error response; err[1]: base or stride misaligned, or
// (RT_SHAPE) a shape out of range, or cfg_raw on a unit without RAW_OUT (both sticky until reset).
module token_batch_mvu #(
	int unsigned  MW = 16,
	int unsigned  MH = 8,
	int unsigned  SIMD = 4,
	int unsigned  PE = 2,
	int unsigned  A_BITS = 8,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 24,
	bit  A_SIGNED = 1,
	bit  W_SIGNED = 1,
	int unsigned  B = 4,	// tokens per weight pass
	int unsigned  AXI_DW = 64,
	int unsigned  AXI_AW = 32,
	int unsigned  MAX_BURST = 16,	// beats per read burst
	int unsigned  WFIFO_DEPTH = 32,	// read-data FIFO (beats, a power of 2 >= MAX_BURST)
	int unsigned  CNT_BITS = 16,	// width of cfg_iters and cfg_tokens
	// requantisation inside the unit (RQ = 1): y = clip((acc * scale + bias) >>> shift) to OUT_BITS, with
	// per-channel parameters (RS_BITS / RB_BITS two's complement, RT_BITS unsigned) read from DDR with the weights
	bit  RQ = 0,
	int unsigned  OUT_BITS = 8,
	bit  OUT_SIGNED = 1,
	int unsigned  RS_BITS = 18,
	int unsigned  RB_BITS = 40,
	int unsigned  RT_BITS = 6,
	int unsigned  PQ_DEPTH = 4,	// RQ: folds' parameters queued (a power of 2 >= 2; the planner prices this many)
	// dot products: 0 = one adder tree per PE (synthesis packs the products as it likes), 1 = dot_chain.sv, one DSP
	// slice per product with the SIMD sum down the slices' post-adders, 2 = dot_pack.sv, two products per slice
	// (PE even) in segments of cascaded slices and a fabric tree over the segments (1, 2: more cycles of latency)
	int unsigned  DOT = 0,
	bit  RT_SHAPE = 0,	// 1: the layer's shape from cfg_sf / cfg_nf / cfg_batch (see above)
	bit  RAW_OUT = 0,	// 1: cfg_raw sends a frame's sums unrequantised, K words each (see above)
	int unsigned  RAW_BITS = 0,	// RAW_OUT: bits of a raw sum, 0 = ACC_BITS (K = ceil(RAW_BITS / OUT_BITS))

	localparam int unsigned  IN_STREAM = (SIMD*A_BITS + 7)/8 * 8,
	localparam int unsigned  OB = RQ? OUT_BITS : ACC_BITS,	// bits of one output value
	localparam int unsigned  OUT_STREAM = (PE*OB + 7)/8 * 8
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [AXI_AW-1:0]  cfg_base,
	input	logic [AXI_AW-1:0]  cfg_stride,
	input	logic [CNT_BITS-1:0]  cfg_iters,	// N >= 1
	input	logic [CNT_BITS-1:0]  cfg_tokens,	// T >= 1
	input	logic [CNT_BITS-1:0]  cfg_sf,	// RT_SHAPE: input beats per token SF' (cfg_batch * SF' <= B * MW/SIMD)
	input	logic [CNT_BITS-1:0]  cfg_nf,	// RT_SHAPE: output folds NF' (cfg_batch * NF' <= B * MH/PE)
	input	logic [CNT_BITS-1:0]  cfg_batch,	// RT_SHAPE: tokens per pass B' (1 .. B)
	input	logic  cfg_raw,	// RAW_OUT: the frame's sums unrequantised (cfg_batch * NF' * K <= B * MH/PE)
	input	logic  cfg_unsigned,	// RT_SHAPE: the frame's requantised outputs clip to [0, 2^OUT_BITS - 1]; raw: each sum's low bits
	output	logic [1:0]  err,

	// AXI4 read master (weights)
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

	input	logic [IN_STREAM-1:0]  s_axis_tdata,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [OUT_STREAM-1:0]  m_axis_tdata,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);

	function automatic int unsigned gcd(int unsigned  a, int unsigned  b);
		while(b != 0) begin
			automatic int unsigned  t = a % b;
			a = b;
			b = t;
		end
		return  a;
	endfunction : gcd

	function automatic int unsigned bits_for(int unsigned  n);	// width of a counter holding 0 .. n-1
		return  n > 1? $clog2(n) : 1;
	endfunction : bits_for

	localparam int unsigned  SF = MW / SIMD;
	localparam int unsigned  NF = MH / PE;
	localparam int unsigned  IN_W = SIMD * A_BITS;
	localparam int unsigned  WW = PE * SIMD * W_BITS;	// one weight word
	localparam int unsigned  PB = RS_BITS + RB_BITS + RT_BITS;	// requantisation parameters of one channel
	localparam int unsigned  PW = RQ? (PE*PB + WW - 1) / WW : 0;	// parameter words ahead of each output fold
	localparam int unsigned  PWX = PW > 0? PW : 1;	// (declared sizes)
	localparam int unsigned  PASS_BITS = NF * (PW + SF) * WW;
	localparam int unsigned  BEATS = (PASS_BITS + AXI_DW - 1) / AXI_DW;	// AXI beats per pass
	localparam int unsigned  LAST_BITS = PASS_BITS - (BEATS - 1) * AXI_DW;	// valid bits of a pass's last beat
	localparam int unsigned  BYTES = AXI_DW / 8;
	localparam int unsigned  BURST_BYTES = MAX_BURST * BYTES;
	// the gearbox moves chunks of G bits: beats and words are whole numbers of chunks
	localparam int unsigned  G = gcd(AXI_DW, WW);
	localparam int unsigned  DWC = AXI_DW / G;
	localparam int unsigned  WWC = WW / G;
	localparam int unsigned  LASTC = LAST_BITS / G;
	// the word in use, the next one assembling, one beat; with RQ also room for a fold's parameter words, which are
	// used one cycle each: the weight word after them must be assembling already (else one stall per fold)
	localparam int unsigned  CAP = (2 + PW)*WWC + DWC;
	localparam int unsigned  PROD_BITS = A_BITS + W_BITS + 2;
	localparam int unsigned  RAWB = RAW_BITS > 0? RAW_BITS : ACC_BITS;
	localparam int unsigned  K = RAW_OUT? (RAWB + OUT_BITS - 1) / OUT_BITS : 1;	// words of one raw sum
	localparam int unsigned  K_BITS = bits_for(K);

	localparam int unsigned  B_BITS = bits_for(B);
	localparam int unsigned  NB_BITS = $clog2(B + 1);
	// counters of input beats / output folds: up to B*SF / B*NF with a run-time shape (fewer tokens, wider layer)
	localparam int unsigned  SF_CNT = RT_SHAPE? B*SF : SF;
	localparam int unsigned  NF_CNT = RT_SHAPE? B*NF : NF;
	localparam int unsigned  SF_BITS = bits_for(SF_CNT);
	localparam int unsigned  NF_BITS = bits_for(NF_CNT);
	localparam int unsigned  IA_BITS = bits_for(2*B*SF);
	localparam int unsigned  OA_BITS = bits_for(2*B*NF);
	localparam longint unsigned  BEATS_MAX = RT_SHAPE? longint'(NF_CNT) * (PW + SF_CNT) * (WW / AXI_DW) : BEATS;
	localparam int unsigned  BEAT_BITS = $clog2(BEATS_MAX + 2);
	localparam int unsigned  FIFO_BITS = $clog2(WFIFO_DEPTH);
	localparam int unsigned  CC_BITS = $clog2(CAP + 1);
	localparam int unsigned  SFN_BITS = $clog2(SF_CNT + 1);	// a count 1 .. SF_CNT
	localparam int unsigned  NFN_BITS = $clog2(NF_CNT + 1);

	if(MW % SIMD != 0 || MH % PE != 0)  $error("SIMD must divide MW and PE must divide MH");
	if(DOT > 2 || (DOT == 2 && PE % 2 != 0))  $error("DOT must be 0, 1 or 2 (2: PE even)");
	if(AXI_DW % 8 != 0 || BURST_BYTES > 4096 || (BURST_BYTES & (BURST_BYTES - 1)) != 0)
		$error("MAX_BURST * AXI_DW/8 must be a power of 2 <= 4096");
	if(RQ && (OUT_BITS < 2 || OUT_BITS > 32 || RT_BITS < 1 || RT_BITS > 7))
		$error("RQ: OUT_BITS must be 2..32 and RT_BITS 1..7");
	if(MAX_BURST < 1 || MAX_BURST > 256)  $error("MAX_BURST must be 1..256 (AXI4 INCR)");
	if(WFIFO_DEPTH < MAX_BURST || (WFIFO_DEPTH & (WFIFO_DEPTH - 1)) != 0)
		$error("WFIFO_DEPTH must be a power of 2 >= MAX_BURST");
	if(PQ_DEPTH < 2 || (PQ_DEPTH & (PQ_DEPTH - 1)) != 0)  $error("PQ_DEPTH must be a power of 2 >= 2");
	if(RT_SHAPE && WW % AXI_DW != 0)  $error("RT_SHAPE needs weight words of whole AXI beats (PE*SIMD*W_BITS)");
	if(RAW_OUT && !(RQ && RT_SHAPE))  $error("RAW_OUT needs RQ = 1 and RT_SHAPE = 1");

	typedef logic [1:0]  ostate_t;
	localparam ostate_t  O_FREE = 0, O_FILLING = 1, O_FULL = 2;

	//=======================================================================
	// Input side: fills the two input banks with batches and tells the read master where each batch's weights are

	logic [IN_W-1:0]  IBuf[2*B*SF];	// synthesis picks LUTRAM or BRAM by size

	logic  WBank = 0;
	logic [1:0]  IFull = '0;	// set by the writer, cleared by the compute at the end of the pass
	logic [1:0][NB_BITS-1:0]  INb = '0;	// tokens of the batch in each bank
	logic [SF_BITS-1:0]  WSf = 0;
	logic [B_BITS-1:0]  WB = 0;
	logic [IA_BITS-1:0]  WAddr = 0;	// b*SF + sf
	logic [NB_BITS-1:0]  WNb = 0;	// tokens of the batch being written
	logic  InFrame = 0;
	logic [CNT_BITS-1:0]  TQ = 0, NQ = 0, WTok = 0, WIter = 0;
	logic [AXI_AW-1:0]  IterAddr = 0, StrideQ = 0;

	// the frame's shape: the parameters', or with RT_SHAPE the cfg ports' when in range (sampled like T and N)
	localparam int unsigned  PB_BITS = BEAT_BITS;	// beats of one pass
	logic [SFN_BITS-1:0]  SfQ = SFN_BITS'(SF);
	logic [NFN_BITS-1:0]  NfQ = NFN_BITS'(NF);
	logic [NB_BITS-1:0]  BQ = NB_BITS'(B);
	logic [PB_BITS-1:0]  BeatsQ = PB_BITS'(BEATS);
	logic [1:0][SFN_BITS-1:0]  ISf = '0;	// the shape of the batch in each input bank
	logic [1:0][NFN_BITS-1:0]  INf = '0;
	logic  RawQ = 0;	// the frame is raw
	logic [1:0]  IRaw = '0;	// ... per input bank
	logic  UnsQ = 0;	// the frame's outputs are unsigned
	logic [1:0]  IUns = '0;	// ... per input bank
	uwire  shape_ok = cfg_sf >= 1 && cfg_nf >= 1 && cfg_batch >= 1 && cfg_batch <= B &&
		64'(cfg_batch) * 64'(cfg_sf) <= 64'(B*SF) && 64'(cfg_batch) * 64'(cfg_nf) <= 64'(B*NF);
	// a raw frame's sums take K bank words each
	uwire  raw_ok = 64'(cfg_batch) * 64'(cfg_nf) * 64'(cfg_unsigned? 1 : K) <= 64'(B*NF);
	uwire  use_cfg = RT_SHAPE && shape_ok && (!cfg_raw || (RAW_OUT && raw_ok));
	uwire  raw_in = RAW_OUT && use_cfg && cfg_raw;
	// with RT_SHAPE each frame picks its clip range (the engine runs INT8 and UINT8 layers on one unit)
	uwire  uns_in = RT_SHAPE? cfg_unsigned : !OUT_SIGNED;
	uwire [SFN_BITS-1:0]  sf_in = use_cfg? SFN_BITS'(cfg_sf) : SFN_BITS'(SF);
	uwire [NFN_BITS-1:0]  nf_in = use_cfg? NFN_BITS'(cfg_nf) : NFN_BITS'(NF);
	uwire [NB_BITS-1:0]  b_in = use_cfg? NB_BITS'(cfg_batch) : NB_BITS'(B);
	// a pass's beats: NF' folds of PW parameter words and SF' weight words, each WW/AXI_DW beats (whole beats)
	uwire [PB_BITS-1:0]  beats_in = RT_SHAPE? PB_BITS'(64'(nf_in) * (64'(raw_in? 0 : PW) + 64'(sf_in)) * 64'(WW / AXI_DW)) :
		PB_BITS'(BEATS);

	// descriptor queue to the read master: the weight address of each batch started
	localparam int unsigned  DQ_DEPTH = 4;
	logic [DQ_DEPTH-1:0][AXI_AW-1:0]  DQ = '0;
	logic [DQ_DEPTH-1:0][PB_BITS-1:0]  DQBeats = '0;	// ... and its pass's beats
	logic [1:0]  DqWp = 0, DqRp = 0;
	logic [2:0]  DqCnt = 0;
	uwire  dq_pop;

	uwire  batch_start = WB == 0 && WSf == 0;
	uwire [CNT_BITS-1:0]  t_eff = InFrame? TQ : cfg_tokens;
	uwire [CNT_BITS-1:0]  n_eff = InFrame? NQ : cfg_iters;
	uwire [AXI_AW-1:0]  base_eff = InFrame? IterAddr : cfg_base;
	uwire [AXI_AW-1:0]  stride_eff = InFrame? StrideQ : cfg_stride;
	uwire [SFN_BITS-1:0]  sf_eff = InFrame? SfQ : sf_in;
	uwire [NFN_BITS-1:0]  nf_eff = InFrame? NfQ : nf_in;
	uwire [NB_BITS-1:0]  b_eff = InFrame? BQ : b_in;
	uwire [PB_BITS-1:0]  beats_eff = InFrame? BeatsQ : beats_in;
	uwire  raw_eff = InFrame? RawQ : raw_in;
	uwire  uns_eff = InFrame? UnsQ : uns_in;
	uwire [CNT_BITS-1:0]  tok_left = t_eff - WTok;
	uwire [NB_BITS-1:0]  nb_now = tok_left >= CNT_BITS'(b_eff)? b_eff : NB_BITS'(tok_left);
	uwire [NB_BITS-1:0]  nb_eff = batch_start? nb_now : WNb;
	uwire  w_last_sf = (SFN_BITS+1)'(WSf) + 1 == (SFN_BITS+1)'(sf_eff);
	uwire  w_batch_end = w_last_sf && (NB_BITS'(WB) + 1 == nb_eff);
	uwire  w_iter_end = w_batch_end && (WTok + CNT_BITS'(nb_eff) == t_eff);
	uwire  w_frame_end = w_iter_end && (WIter + 1 == n_eff);

	assign	s_axis_tready = !IFull[WBank] && (!batch_start || DqCnt != DQ_DEPTH);
	uwire  take_in = s_axis_tvalid && s_axis_tready;

	always_ff @(posedge clk) begin
		if(take_in)  IBuf[WBank? IA_BITS'(B*SF) + WAddr : WAddr] <= s_axis_tdata[IN_W-1:0];
	end

	logic  ErrAlign = 0;
	uwire  clear_ifull;	// the compute finished reading bank RBank
	uwire  c_rbank;

	always_ff @(posedge clk) begin
		if(rst) begin
			WBank <= 0;
			IFull <= '0;
			INb <= '0;
			WSf <= 0;
			WB <= 0;
			WAddr <= 0;
			WNb <= 0;
			InFrame <= 0;
			TQ <= 0;
			NQ <= 0;
			SfQ <= SFN_BITS'(SF);
			NfQ <= NFN_BITS'(NF);
			BQ <= NB_BITS'(B);
			BeatsQ <= PB_BITS'(BEATS);
			ISf <= '0;
			INf <= '0;
			RawQ <= 0;
			IRaw <= '0;
			UnsQ <= 0;
			IUns <= '0;
			WTok <= 0;
			WIter <= 0;
			IterAddr <= 0;
			StrideQ <= 0;
			DqWp <= 0;
			DqRp <= 0;
			DqCnt <= 0;
			ErrAlign <= 0;
		end
		else begin
			if(clear_ifull)  IFull[c_rbank] <= 0;
			if(dq_pop)  DqRp <= DqRp + 1;
			DqCnt <= DqCnt + (take_in && batch_start? 1 : 0) - (dq_pop? 1 : 0);
			if(take_in) begin
				if(!InFrame) begin
					InFrame <= 1;
					TQ <= cfg_tokens;
					NQ <= cfg_iters;
					StrideQ <= cfg_stride;
					IterAddr <= cfg_base;
					WTok <= 0;
					WIter <= 0;
					SfQ <= sf_in;
					NfQ <= nf_in;
					BQ <= b_in;
					BeatsQ <= beats_in;
					RawQ <= raw_in;
					UnsQ <= uns_in;
					if(cfg_base % BURST_BYTES != 0 || cfg_stride % BURST_BYTES != 0 || (RT_SHAPE && !shape_ok) ||
							(cfg_raw && !(RAW_OUT && raw_ok)))
						ErrAlign <= 1;
				end
				if(batch_start) begin
					WNb <= nb_now;
					INb[WBank] <= nb_now;
					ISf[WBank] <= sf_eff;
					INf[WBank] <= nf_eff;
					IRaw[WBank] <= raw_eff;
					IUns[WBank] <= uns_eff;
					DQ[DqWp] <= base_eff;
					DQBeats[DqWp] <= beats_eff;
					DqWp <= DqWp + 1;
				end
				if(w_batch_end) begin
					WSf <= 0;
					WB <= 0;
					WAddr <= 0;
					IFull[WBank] <= 1;
					WBank <= !WBank;
					if(w_iter_end) begin
						WTok <= 0;
						IterAddr <= base_eff + stride_eff;
						if(w_frame_end) begin
							InFrame <= 0;
							WIter <= 0;
						end
						else  WIter <= (InFrame? WIter : 0) + 1;
					end
					else  WTok <= (InFrame? WTok : 0) + CNT_BITS'(nb_eff);
				end
				else begin
					WAddr <= WAddr + 1;
					if(w_last_sf) begin
						WSf <= 0;
						WB <= WB + 1;
					end
					else  WSf <= WSf + 1;
				end
			end
		end
	end

	//=======================================================================
	// Read master: one pass of BEATS beats per descriptor, bursts issued only into reserved FIFO space

	logic  ArActive = 0;
	logic  ArValid = 0;
	logic [AXI_AW-1:0]  ArAddr = 0;
	logic [7:0]  ArLen = 0;
	logic [BEAT_BITS-1:0]  ArLeft = 0;	// beats of the pass not yet requested
	logic [FIFO_BITS:0]  Reserved = 0;	// FIFO slots promised to requested beats not yet taken by the gearbox
	uwire  fifo_pop;

	assign	dq_pop = !ArActive && DqCnt != 0;
	uwire [8:0]  burst = int'(ArLeft) > MAX_BURST? 9'(MAX_BURST) : 9'(ArLeft);	// beats of the next burst
	uwire  ar_load = ArActive && !ArValid && (int'(Reserved) + int'(burst) <= WFIFO_DEPTH);	// int: no wrap

	always_ff @(posedge clk) begin
		if(rst) begin
			ArActive <= 0;
			ArValid <= 0;
			ArAddr <= 0;
			ArLen <= 0;
			ArLeft <= 0;
			Reserved <= 0;
		end
		else begin
			Reserved <= Reserved + (ar_load? (FIFO_BITS+1)'(burst) : 0) - (fifo_pop? 1 : 0);
			if(dq_pop) begin
				ArActive <= 1;
				ArAddr <= DQ[DqRp];
				ArLeft <= DQBeats[DqRp];
			end
			if(ar_load) begin
				ArValid <= 1;
				ArLen <= 8'(burst - 1);
			end
			if(ArValid && m_axi_arready) begin
				ArValid <= 0;
				ArAddr <= ArAddr + AXI_AW'(BYTES * (int'(ArLen) + 1));
				ArLeft <= ArLeft - BEAT_BITS'(ArLen) - 1;
				if(ArLeft == BEAT_BITS'(ArLen) + 1)  ArActive <= 0;
			end
		end
	end

	assign	m_axi_arid = 0;
	assign	m_axi_araddr = ArAddr;
	assign	m_axi_arlen = ArLen;
	assign	m_axi_arsize = 3'($clog2(BYTES));
	assign	m_axi_arburst = 2'b01;	// INCR
	assign	m_axi_arcache = 4'b0011;	// normal, non-cacheable, bufferable
	assign	m_axi_arprot = 3'b000;
	assign	m_axi_arvalid = ArValid;

	// read-data FIFO (distributed RAM)
	logic [AXI_DW-1:0]  RFifo[WFIFO_DEPTH];
	logic [FIFO_BITS-1:0]  RfWp = 0, RfRp = 0;
	logic [FIFO_BITS:0]  RfCnt = 0;
	logic  ErrResp = 0;
	assign	m_axi_rready = RfCnt != (FIFO_BITS+1)'(WFIFO_DEPTH);
	uwire  r_take = m_axi_rvalid && m_axi_rready;
	always_ff @(posedge clk) begin
		if(r_take)  RFifo[RfWp] <= m_axi_rdata;
	end
	always_ff @(posedge clk) begin
		if(rst) begin
			RfWp <= 0;
			RfRp <= 0;
			RfCnt <= 0;
			ErrResp <= 0;
		end
		else begin
			if(r_take)  RfWp <= RfWp + 1;
			if(fifo_pop)  RfRp <= RfRp + 1;
			RfCnt <= RfCnt + (r_take? 1 : 0) - (fifo_pop? 1 : 0);
			if(r_take && m_axi_rresp != 2'b00)  ErrResp <= 1;
		end
	end
	assign	err = {ErrAlign, ErrResp};

	//=======================================================================
	// Gearbox: AXI beats -> weight words. The word at the bottom is in use for nb cycles while the next one
	// assembles (with room for only one word, the next word's beats could not enter before the pop: measured 1.75x
	// the MAC cycles at B=8).

	uwire  word_pop;
	uwire  word_vld;
	uwire [WW-1:0]  word;
	uwire [AXI_DW-1:0]  beat = RFifo[RfRp];

	if(WW % AXI_DW == 0) begin : genSlots
		// Words of whole beats (then every pass is whole beats too): a ring of 2 + PW word slots, each beat written
		// in place (a clock enable per beat of a slot, no data mux) and the word in use read through one
		// (2 + PW):1 mux, about WW LUTs instead of a shifting buffer's LUT per bit of 2 + PW words and a beat
		localparam int unsigned  NS = 2 + PW;
		localparam int unsigned  WBEATS = WW / AXI_DW;	// beats per word
		localparam int unsigned  NS_BITS = bits_for(NS);
		localparam int unsigned  WB_BITS = bits_for(WBEATS);
		(* ram_style = "registers" *) logic [WBEATS-1:0][AXI_DW-1:0]  Slot[NS];	// flip-flops: the word is read whole
		logic [NS_BITS-1:0]  SWr = 0, SRd = 0;	// slot being written, slot in use
		logic [WB_BITS-1:0]  SBeat = 0;	// beat of the slot being written
		logic [$clog2(NS+1)-1:0]  SCnt = 0;	// whole words in the ring
		assign	word_vld = SCnt != 0;
		assign	word = Slot[SRd];
		// the slot being written is free unless all NS hold words; the one in use frees as it is popped
		assign	fifo_pop = RfCnt != 0 && (int'(SCnt) < NS || word_pop);
		uwire  s_done = fifo_pop && SBeat == WB_BITS'(WBEATS-1);

		always_ff @(posedge clk) begin
			if(fifo_pop)  Slot[SWr][SBeat] <= beat;
		end
		always_ff @(posedge clk) begin
			if(rst) begin
				SWr <= 0;
				SRd <= 0;
				SBeat <= 0;
				SCnt <= 0;
			end
			else begin
				if(fifo_pop)  SBeat <= s_done? 0 : SBeat + 1;
				if(s_done)  SWr <= SWr == NS_BITS'(NS-1)? 0 : SWr + 1;
				if(word_pop)  SRd <= SRd == NS_BITS'(NS-1)? 0 : SRd + 1;
				SCnt <= SCnt + (s_done? 1 : 0) - (word_pop? 1 : 0);
			end
		end
	end : genSlots
	else begin : genShift
		// Words and beats of other sizes: a shifting buffer of CAP chunks of G bits; a pass's last beat contributes
		// only its valid chunks.
		logic [CAP*G-1:0]  GBuf = '0;
		logic [CC_BITS-1:0]  GCnt = 0;	// valid chunks in GBuf (from the bottom)
		logic [BEAT_BITS-1:0]  GBeat = 0;	// beat of the pass
		assign	word_vld = GCnt >= CC_BITS'(WWC);
		assign	word = GBuf[WW-1:0];
		uwire [CC_BITS-1:0]  g_base = GCnt - (word_pop? CC_BITS'(WWC) : 0);
		assign	fifo_pop = RfCnt != 0 && (int'(g_base) + DWC <= CAP);	// int: no wrap
		uwire  g_last_beat = GBeat == BEAT_BITS'(BEATS-1);

		logic [CAP*G-1:0]  gbuf_next;
		always_comb begin
			gbuf_next = word_pop? (CAP*G)'(GBuf >> WW) : GBuf;
			if(fifo_pop) begin
				for(int unsigned  j = 0; j < CAP; j++) begin
					if(j >= g_base && j < g_base + DWC)  gbuf_next[j*G +: G] = beat[(j - g_base)*G +: G];
				end
			end
		end

		always_ff @(posedge clk) begin
			if(rst) begin
				GBuf <= '0;
				GCnt <= 0;
				GBeat <= 0;
			end
			else begin
				GBuf <= gbuf_next;
				GCnt <= g_base + (fifo_pop? (g_last_beat? CC_BITS'(LASTC) : CC_BITS'(DWC)) : 0);
				if(fifo_pop)  GBeat <= g_last_beat? 0 : GBeat + 1;
			end
		end
	end : genShift

	//=======================================================================
	// Compute: issue (nf, sf, b) -> S1 operands -> S2 dot products -> accumulate / write the output bank

	logic  Busy = 0;
	logic  RBank = 0, OBank = 0;	// banks of the current pass, or of the next one while not busy
	logic [NB_BITS-1:0]  CNb = 0;
	logic [B_BITS-1:0]  CB = 0;
	logic [SF_BITS-1:0]  CSf = 0;
	logic [NF_BITS-1:0]  CNf = 0;
	logic [IA_BITS-1:0]  RAddr = 0;	// b*SF + sf
	logic [OA_BITS-1:0]  OAddr = 0;	// b*NF + nf
	logic [1:0]  OState[2];
	logic [1:0][NB_BITS-1:0]  ONb = '0;
	logic [SFN_BITS-1:0]  CSfN = 0;	// the pass's shape (from its input bank)
	logic [NFN_BITS-1:0]  CNfN = 0;
	logic [1:0][NFN_BITS-1:0]  ONf = '0;	// the bank words per token of each output bank's pass (raw: NF'*K)
	logic  CRaw = 0;	// the pass is raw
	logic  CUns = 0;	// the pass's outputs are unsigned
	logic [K_BITS-1:0]  Cool = 0;	// raw: cycles until the next issue that finishes a sum

	uwire  can_start = IFull[RBank] && OState[OBank] == O_FREE;
	// parameter words of the fold (RQ): CPw taken so far; assembled in PAsm, queued per fold in PQ until the
	// fold's last sum has been requantised (folds in flight in the pipeline keep theirs)
	localparam int unsigned  PW_BITS = $clog2(PWX + 1);
	localparam int unsigned  PQ_BITS = $clog2(PQ_DEPTH);
	logic [PW_BITS-1:0]  CPw = 0;
	logic [PQ_DEPTH-1:0][PE*PB-1:0]  PQ = '0;
	logic [PQ_BITS-1:0]  PqWp = 0, PqRp = 0;
	logic [PQ_BITS:0]  PqCnt = 0;
	uwire  pq_pop;
	uwire  raw_c = Busy? CRaw : IRaw[RBank];
	uwire  uns_c = Busy? CUns : IUns[RBank];
	uwire  par_phase = PW != 0 && !raw_c && CPw != PW_BITS'(PW);
	uwire  par_take = (Busy || can_start) && par_phase && word_vld && PqCnt != (PQ_BITS+1)'(PQ_DEPTH);
	uwire [NB_BITS-1:0]  nb_c = Busy? CNb : INb[RBank];
	uwire [SFN_BITS-1:0]  sf_c = Busy? CSfN : ISf[RBank];
	uwire [NFN_BITS-1:0]  nf_c = Busy? CNfN : INf[RBank];
	uwire  c_last_b = NB_BITS'(CB) + 1 == nb_c;
	uwire  c_last_sf = (SFN_BITS+1)'(CSf) + 1 == (SFN_BITS+1)'(sf_c);
	// an issue that finishes a sum waits out a raw sum's K bank writes (any pass: the next pass's first sums too)
	uwire  issue = (Busy || can_start) && !par_phase && word_vld && !(c_last_sf && Cool != 0);
	uwire  c_last_nf = (NFN_BITS+1)'(CNf) + 1 == (NFN_BITS+1)'(nf_c);
	uwire  pass_last = issue && c_last_b && c_last_sf && c_last_nf;
	assign	word_pop = par_take || (issue && c_last_b);
	assign	clear_ifull = pass_last;
	assign	c_rbank = RBank;

	// S1: input beat (registered RAM read) and weight word
	logic [IN_W-1:0]  S1A;
	logic [WW-1:0]  S1W = '0;
	logic  S1Vld = 0, S1First = 0, S1Last = 0, S1PassLast = 0, S1OBank = 0, S1FoldEnd = 0, S1Raw = 0, S1Uns = 0;
	logic [B_BITS-1:0]  S1B = 0;
	logic [OA_BITS-1:0]  S1OAddr = 0;
	logic [NB_BITS-1:0]  S1Nb = 0;
	always_ff @(posedge clk) begin
		if(issue)  S1A <= IBuf[RBank? IA_BITS'(B*SF) + RAddr : RAddr];
	end

	// S2: dot products
	typedef logic signed [ACC_BITS-1:0]  acc_t;
	logic [PE-1:0][ACC_BITS-1:0]  S2Dot = '0;
	logic  S2Vld = 0, S2First = 0, S2Last = 0, S2PassLast = 0, S2OBank = 0, S2FoldEnd = 0, S2Raw = 0, S2Uns = 0;
	logic [B_BITS-1:0]  S2B = 0;
	logic [OA_BITS-1:0]  S2OAddr = 0;
	logic [NB_BITS-1:0]  S2Nb = 0;

	logic [PE-1:0][ACC_BITS-1:0]  dot;
	// the S1 bookkeeping as S2 takes it: through dot_chain / dot_pack it travels beside the operands, so S2 and
	// everything after see the same sequence as without (only later); bit 0 is the valid flag, the only one reset
	localparam int unsigned  CTL_BITS = 8 + B_BITS + OA_BITS + NB_BITS;
	uwire [CTL_BITS-1:0]  s1_ctl = {S1Uns, S1Raw, S1First, S1Last, S1FoldEnd, S1Vld && S1PassLast, S1OBank, S1B, S1OAddr, S1Nb,
		S1Vld};
	uwire [CTL_BITS-1:0]  s2_ctl;
	if(DOT == 1) begin : genChain
		dot_chain #(
			.SIMD(SIMD), .PE(PE), .A_BITS(A_BITS), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS),
			.A_SIGNED(A_SIGNED), .W_SIGNED(W_SIGNED), .CTL_BITS(CTL_BITS)
		) chain (.clk, .rst, .a(S1A), .w(S1W), .ctl_in(s1_ctl), .dot, .ctl_out(s2_ctl));
	end : genChain
	else if(DOT == 2) begin : genPack
		dot_pack #(
			.SIMD(SIMD), .PE(PE), .A_BITS(A_BITS), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS),
			.A_SIGNED(A_SIGNED), .W_SIGNED(W_SIGNED), .CTL_BITS(CTL_BITS)
		) pack (.clk, .rst, .a(S1A), .w(S1W), .ctl_in(s1_ctl), .dot, .ctl_out(s2_ctl));
	end : genPack
	else begin : genTree
		assign	s2_ctl = s1_ctl;
		for(genvar  p = 0; p < PE; p++) begin : genLane
			always_comb begin
				automatic acc_t  d = '0;
				for(int unsigned  s = 0; s < SIMD; s++) begin
					automatic logic [A_BITS-1:0]  a = S1A[s*A_BITS +: A_BITS];
					automatic logic [W_BITS-1:0]  w = S1W[(p*SIMD + s)*W_BITS +: W_BITS];
					// one extra bit makes unsigned operands non-negative signed values
					automatic logic signed [A_BITS:0]  ax = A_SIGNED? $signed({a[A_BITS-1], a}) : $signed({1'b0, a});
					automatic logic signed [W_BITS:0]  wx = W_SIGNED? $signed({w[W_BITS-1], w}) : $signed({1'b0, w});
					automatic logic signed [PROD_BITS-1:0]  prod = ax * wx;
					d += acc_t'(prod);
				end
				dot[p] = d;
			end
		end : genLane
	end : genTree

	// S3: accumulator RAM (B deep, asynchronous read: the same token's sum is read back at the earliest one cycle
	// after it was written); finished sums go to the output banks (RQ: through two requantisation stages)
	logic [PE*ACC_BITS-1:0]  AccRam[B];
	(* ram_style = "block" *)
	logic [PE*OB-1:0]  ORam[2*B*NF];
	logic [PE-1:0][ACC_BITS-1:0]  acc_old, acc_new;
	assign	acc_old = AccRam[S2B];
	for(genvar  p = 0; p < PE; p++) begin : genAcc
		assign	acc_new[p] = (S2First? acc_t'(0) : acc_t'(acc_old[p])) + acc_t'(S2Dot[p]);
	end : genAcc

	// the values written to the output banks and their bookkeeping, at the last stage
	uwire  fin_vld, fin_pass_last, fin_obank;
	uwire [OA_BITS-1:0]  fin_oaddr;
	uwire [NB_BITS-1:0]  fin_nb;
	uwire [PE*OB-1:0]  fin_data;
	assign	pq_pop = S2Vld && S2Last && S2FoldEnd && PW != 0 && !S2Raw;

	if(RQ) begin : genRq
		localparam int unsigned  SUM_BITS = (ACC_BITS + RS_BITS > RB_BITS? ACC_BITS + RS_BITS : RB_BITS) + 1;
		typedef logic signed [SUM_BITS-1:0]  sum_t;
		// T3: the finished sums and their fold's parameters
		logic [PE-1:0][ACC_BITS-1:0]  T3Acc = '0;
		logic [PE*PB-1:0]  T3Par = '0;
		logic  T3Vld = 0, T3PassLast = 0, T3OBank = 0, T3Raw = 0, T3Uns = 0;
		logic [OA_BITS-1:0]  T3OAddr = 0;
		logic [NB_BITS-1:0]  T3Nb = 0;
		// T4: acc * scale + bias, and the shift
		logic [PE-1:0][SUM_BITS-1:0]  T4Sum = '0;
		logic [PE-1:0][RT_BITS-1:0]  T4Sh = '0;
		logic  T4Vld = 0, T4PassLast = 0, T4OBank = 0, T4Raw = 0, T4Uns = 0;
		logic [PE-1:0][ACC_BITS-1:0]  T4Acc = '0;	// RAW_OUT: the sums themselves
		logic [OA_BITS-1:0]  T4OAddr = 0;
		logic [NB_BITS-1:0]  T4Nb = 0;
		always_ff @(posedge clk) begin
			if(rst) begin
				T3Vld <= 0;
				T3PassLast <= 0;
				T4Vld <= 0;
				T4PassLast <= 0;
			end
			else begin
				T3Vld <= S2Vld && S2Last;
				T3PassLast <= S2PassLast;
				T4Vld <= T3Vld;
				T4PassLast <= T3PassLast;
			end
			T3Acc <= acc_new;
			T3Par <= PQ[PqRp];
			T3Raw <= S2Raw;
			T4Raw <= T3Raw;
			T3Uns <= S2Uns;
			T4Uns <= T3Uns;
			if(RAW_OUT)  T4Acc <= T3Acc;
			T3OBank <= S2OBank;
			T3OAddr <= S2OAddr;
			T3Nb <= S2Nb;
			for(int unsigned  p = 0; p < PE; p++) begin
				automatic sum_t  a = sum_t'($signed(T3Acc[p]));
				automatic sum_t  sc = sum_t'($signed(T3Par[p*PB +: RS_BITS]));
				automatic sum_t  bi = sum_t'($signed(T3Par[p*PB + RS_BITS +: RB_BITS]));
				T4Sum[p] <= a * sc + bi;
				T4Sh[p] <= T3Par[p*PB + RS_BITS + RB_BITS +: RT_BITS];
			end
			T4OBank <= T3OBank;
			T4OAddr <= T3OAddr;
			T4Nb <= T3Nb;
		end
		// floor((acc * scale + bias) / 2^shift), clipped to the frame's output range (signed, or unsigned)
		localparam sum_t  LO_S = -(sum_t'(1) <<< (OUT_BITS - 1));
		localparam sum_t  HI_S = (sum_t'(1) <<< (OUT_BITS - 1)) - 1;
		localparam sum_t  HI_U = (sum_t'(1) <<< OUT_BITS) - 1;
		uwire sum_t  lo = T4Uns? sum_t'(0) : LO_S;
		uwire sum_t  hi = T4Uns? HI_U : HI_S;
		uwire [PE*OB-1:0]  clipped;
		for(genvar  p = 0; p < PE; p++) begin : genClip
			uwire sum_t  shifted = $signed(T4Sum[p]) >>> T4Sh[p];
			assign	clipped[p*OB +: OB] = shifted < lo? OB'(lo) : shifted > hi? OB'(hi) : OB'(shifted);
		end : genClip
		if(RAW_OUT) begin : genRaw
			// a raw fold's sums: word 0 at T4 (where the requantised values are written), words 1 .. K-1 in the
			// K-1 cycles after (the issue spacing keeps them clear of the next sum); the pass's bank is full after
			// its last word
			localparam int unsigned  RW = PE*K*OB;
			uwire [RW-1:0]  raw_vec;
			for(genvar  p = 0; p < PE; p++) begin : genExt
				assign	raw_vec[p*K*OB +: K*OB] = (K*OB)'($signed(T4Acc[p]));
			end : genExt
			logic [RW-1:0]  SerVec = '0;
			logic [K_BITS-1:0]  SerK = 0;
			logic  SerBusy = 0, SerPassLast = 0, SerOBank = 0;
			logic [OA_BITS-1:0]  SerAddr = 0;
			logic [NB_BITS-1:0]  SerNb = 0;
			uwire  t4_raw = T4Vld && T4Raw && !T4Uns;	// a raw fold as K words
			uwire  t4_low = T4Vld && T4Raw && T4Uns;	// ... as its sums' low OB bits, one word
			uwire [PE*OB-1:0]  low_vec;
			for(genvar  p = 0; p < PE; p++) begin : genLow
				assign	low_vec[p*OB +: OB] = T4Acc[p][OB-1:0];
			end : genLow
			uwire  ser_last = SerBusy && SerK == K_BITS'(K-1);
			always_ff @(posedge clk) begin
				if(rst) begin
					SerBusy <= 0;
					SerPassLast <= 0;
				end
				else begin
					if(t4_raw && K > 1)  SerBusy <= 1;
					else if(ser_last)  SerBusy <= 0;
					if(t4_raw)  SerPassLast <= T4PassLast;
				end
				if(t4_raw) begin
					SerVec <= raw_vec;
					SerK <= 1;
					SerAddr <= OA_BITS'(T4OAddr * K) + 1;
					SerOBank <= T4OBank;
					SerNb <= T4Nb;
				end
				else if(SerBusy) begin
					SerK <= SerK + 1;
					SerAddr <= SerAddr + 1;
				end
			end
			assign	fin_vld = T4Vld || SerBusy;
			assign	fin_obank = SerBusy? SerOBank : T4OBank;
			assign	fin_oaddr = SerBusy? SerAddr : t4_raw? OA_BITS'(T4OAddr * K) : T4OAddr;
			assign	fin_nb = SerBusy? SerNb : T4Nb;
			assign	fin_data = SerBusy? SerVec[SerK*PE*OB +: PE*OB] : t4_raw? raw_vec[PE*OB-1:0] : t4_low? low_vec : clipped;
			assign	fin_pass_last = SerBusy? ser_last && SerPassLast
				: T4Vld && T4PassLast && (!T4Raw || T4Uns || K == 1);
		end : genRaw
		else begin : genRqOnly
			assign	fin_vld = T4Vld;
			assign	fin_pass_last = T4PassLast;
			assign	fin_obank = T4OBank;
			assign	fin_oaddr = T4OAddr;
			assign	fin_nb = T4Nb;
			assign	fin_data = clipped;
		end : genRqOnly
	end : genRq
	else begin : genAccOut
		assign	fin_vld = S2Vld && S2Last;
		assign	fin_pass_last = S2PassLast;
		assign	fin_obank = S2OBank;
		assign	fin_oaddr = S2OAddr;
		assign	fin_nb = S2Nb;
		assign	fin_data = acc_new;
	end : genAccOut

	always_ff @(posedge clk) begin
		if(S2Vld)  AccRam[S2B] <= acc_new;
		if(fin_vld)  ORam[fin_obank? OA_BITS'(B*NF) + fin_oaddr : fin_oaddr] <= fin_data;
	end

	// parameter words: assembled per fold, queued (RQ)
	if(RQ) begin : genPar
		logic [PWX*WW-1:0]  PAsm = '0;
		logic [PWX*WW-1:0]  pasm_next;
		always_comb begin
			pasm_next = PAsm;
			pasm_next[CPw*WW +: WW] = word;
		end
		always_ff @(posedge clk) begin
			if(par_take) begin
				PAsm <= pasm_next;
				if(CPw == PW_BITS'(PW - 1))  PQ[PqWp] <= pasm_next[PE*PB-1:0];
			end
		end
	end : genPar
	uwire  pq_push = par_take && CPw == PW_BITS'(PW - 1);

	// drain: output banks in order, through a 4-entry queue (registered RAM read, one beat per cycle)
	logic  DBank = 0;
	logic [B_BITS-1:0]  DB = 0;
	logic [NF_BITS-1:0]  DNf = 0;
	logic [OA_BITS-1:0]  DAddr = 0;
	logic  RdPend = 0;
	logic [PE*OB-1:0]  ORd;
	logic [3:0][PE*OB-1:0]  Q = '0;
	logic [1:0]  QWp = 0, QRp = 0;
	logic [2:0]  QCnt = 0;
	uwire  d_active = OState[DBank] == O_FULL;
	uwire  d_last_nf = (NFN_BITS+1)'(DNf) + 1 == (NFN_BITS+1)'(ONf[DBank]);
	uwire  d_last = NB_BITS'(DB) + 1 == ONb[DBank] && d_last_nf;
	uwire  rd_issue = d_active && (QCnt + (RdPend? 1 : 0) < 4);
	uwire  q_pop = m_axis_tvalid && m_axis_tready;

	always_ff @(posedge clk) begin
		if(rd_issue)  ORd <= ORam[DBank? OA_BITS'(B*NF) + DAddr : DAddr];
	end

	always_ff @(posedge clk) begin
		if(rst) begin
			Busy <= 0;
			RBank <= 0;
			OBank <= 0;
			CNb <= 0;
			CB <= 0;
			CSf <= 0;
			CNf <= 0;
			RAddr <= 0;
			OAddr <= 0;
			OState <= '{O_FREE, O_FREE};
			ONb <= '0;
			ONf <= '0;
			CSfN <= 0;
			CNfN <= 0;
			CRaw <= 0;
			CUns <= 0;
			Cool <= 0;
			S1W <= '0;
			CPw <= 0;
			PqWp <= 0;
			PqRp <= 0;
			PqCnt <= 0;
			S1Vld <= 0;
			S1PassLast <= 0;
			S2Vld <= 0;
			S2PassLast <= 0;
			DBank <= 0;
			DB <= 0;
			DNf <= 0;
			DAddr <= 0;
			RdPend <= 0;
			QWp <= 0;
			QRp <= 0;
			QCnt <= 0;
		end
		else begin
			// parameters
			if(par_take)  CPw <= CPw + 1;
			if(pq_push)  PqWp <= PqWp + 1;
			if(pq_pop)  PqRp <= PqRp + 1;
			PqCnt <= PqCnt + (pq_push? 1 : 0) - (pq_pop? 1 : 0);
			// issue
			if((issue || par_take) && !Busy) begin
				Busy <= 1;
				CNb <= INb[RBank];
				CSfN <= ISf[RBank];
				CNfN <= INf[RBank];
				ONf[OBank] <= IRaw[RBank] && !IUns[RBank]? NFN_BITS'(INf[RBank] * K) : INf[RBank];
				CRaw <= IRaw[RBank];
				CUns <= IUns[RBank];
				OState[OBank] <= O_FILLING;
			end
			if(issue) begin
				if(c_last_b && c_last_sf)  CPw <= 0;
				if(c_last_b) begin
					CB <= 0;
					RAddr <= c_last_sf? 0 : IA_BITS'(CSf) + 1;
					if(c_last_sf) begin
						CSf <= 0;
						CNf <= c_last_nf? 0 : CNf + 1;
						OAddr <= c_last_nf? 0 : OA_BITS'(CNf) + 1;
					end
					else begin
						CSf <= CSf + 1;
						OAddr <= OA_BITS'(CNf);
					end
				end
				else begin
					CB <= CB + 1;
					RAddr <= RAddr + IA_BITS'(sf_c);
					OAddr <= OAddr + OA_BITS'(nf_c);
				end
				if(pass_last) begin
					Busy <= 0;
					RBank <= !RBank;
					OBank <= !OBank;
				end
			end
			if(issue && c_last_sf && raw_c && !uns_c)  Cool <= K_BITS'(K-1);
			else if(Cool != 0)  Cool <= Cool - 1;
			S1Vld <= issue;
			S1Raw <= raw_c;
			S1Uns <= uns_c;
			S1W <= word;
			S1B <= CB;
			S1First <= CSf == 0;
			S1Last <= c_last_sf;
			S1FoldEnd <= c_last_sf && c_last_b;
			S1PassLast <= pass_last;
			S1OBank <= OBank;
			S1OAddr <= OAddr;
			S1Nb <= nb_c;

			{S2Uns, S2Raw, S2First, S2Last, S2FoldEnd, S2PassLast, S2OBank, S2B, S2OAddr, S2Nb, S2Vld} <= s2_ctl;
			S2Dot <= dot;

			if(fin_pass_last) begin
				OState[fin_obank] <= O_FULL;
				ONb[fin_obank] <= fin_nb;
			end

			// drain
			RdPend <= rd_issue;
			if(rd_issue) begin
				if(d_last) begin
					DB <= 0;
					DNf <= 0;
					DAddr <= 0;
					OState[DBank] <= O_FREE;
					DBank <= !DBank;
				end
				else begin
					DAddr <= DAddr + 1;
					if(d_last_nf) begin
						DNf <= 0;
						DB <= DB + 1;
					end
					else  DNf <= DNf + 1;
				end
			end
			if(RdPend) begin
				Q[QWp] <= ORd;
				QWp <= QWp + 1;
			end
			if(q_pop)  QRp <= QRp + 1;
			QCnt <= QCnt + (RdPend? 1 : 0) - (q_pop? 1 : 0);
		end
	end

	assign	m_axis_tvalid = QCnt != 0;
	assign	m_axis_tdata = OUT_STREAM'(Q[QRp]);

endmodule : token_batch_mvu
