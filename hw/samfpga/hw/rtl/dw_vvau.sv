// Depthwise vector-vector unit (FINN's VVAU without activation: the depthwise 3x3 conv of the MBConv blocks)
// in plain fabric logic: the multipliers map to DSP48E2 or LUTs as synthesis decides. FINN+'s RTL VVU needs
// Versal DSP58, so on Zynq UltraScale+ FINN+ only has the HLS variant.
//
// Stream order (FINN's VVAU): per output pixel, for each channel fold nf < NF, for each kernel fold sf < SF,
// one input beat of SIMD*PE elements; element s*PE + p of the beat is kernel position sf*SIMD + s of channel
// nf*PE + p (element 0 in the LSBs). After the last kernel fold of a channel fold, one output beat of PE
// accumulators. WEIGHTS holds one word of SIMD*PE weights per (nf, sf), word nf*SF + sf, in the same element
// order, so the weights are constants of the wrapper (LUT ROM) and no file travels with the IP.
// Arithmetic is exact in ACC_BITS two's complement (FINN sizes the accumulator so the result fits).
// One output register with full throughput: an input beat is taken every cycle unless it completes a channel
// fold while the output register still holds an undelivered result. tvalid never depends on tready.
// In a rolled body (ITERS > 1) the layer serves ITERS blocks in turn, one pass of TOKENS output pixels each:
// WEIGHTS holds the sets one after another (iteration i's words from word i*NF*SF), and the layer counts its own
// output pixels to know the iteration, so nothing outside it selects the weights.
module dw_vvau #(
	int unsigned  PE = 1,
	int unsigned  SIMD = 1,
	int unsigned  SF = 9,	// kernel folds: Kh*Kw / SIMD
	int unsigned  NF = 1,	// channel folds: Channels / PE
	int unsigned  A_BITS = 8,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 20,
	bit  A_SIGNED = 1,
	bit  W_SIGNED = 1,
	int unsigned  ITERS = 1,	// weight sets (blocks of a rolled body)
	int unsigned  TOKENS = 1,	// output pixels per pass (one block's map)
	parameter logic [ITERS*NF*SF*SIMD*PE*W_BITS-1:0]  WEIGHTS = '0,

	localparam int unsigned  IN_STREAM = (PE*SIMD*A_BITS + 7)/8 * 8,
	localparam int unsigned  OUT_STREAM = (PE*ACC_BITS + 7)/8 * 8,
	localparam int unsigned  WORD = SIMD*PE*W_BITS,
	localparam int unsigned  PROD_BITS = A_BITS + W_BITS + 2
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [IN_STREAM-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [OUT_STREAM-1:0]  m_tdata,
	output	logic  m_tvalid,
	input	logic  m_tready
);

	typedef logic signed [ACC_BITS-1:0]  acc_t;
	typedef logic [PE-1:0][ACC_BITS-1:0]  acc_vec_t;

	// fold counters and the weight word they select
	localparam int unsigned  SF_BITS = SF > 1? $clog2(SF) : 1;
	localparam int unsigned  NF_BITS = NF > 1? $clog2(NF) : 1;
	logic [SF_BITS-1:0]  Sf = 0;
	logic [NF_BITS-1:0]  Nf = 0;
	uwire  last_sf = Sf == SF_BITS'(SF-1);

	acc_vec_t  Acc = '0;	// partial sums of the current channel fold
	acc_vec_t  OAcc = '0;	// output register
	logic  OVld = 0;

	uwire  free = !OVld || m_tready;
	assign	s_tready = !last_sf || free;
	uwire  take = s_tvalid && s_tready;

	// the weights of this beat: with one set the index is the fold counters alone (no iteration logic)
	uwire [WORD-1:0]  w_word;
	if(ITERS > 1) begin : genSets
		uwire  last_token_fold = last_sf && Nf == NF_BITS'(NF-1);
		localparam int unsigned  IB = $clog2(ITERS);
		localparam int unsigned  TB = TOKENS > 1? $clog2(TOKENS) : 1;
		logic [IB-1:0]  Iter = 0;	// weight set of the current pass
		logic [TB-1:0]  Tok = 0;	// output pixel within the pass
		always_ff @(posedge clk) begin
			if(rst) begin
				Iter <= 0;
				Tok <= 0;
			end
			else if(take && last_token_fold) begin
				if(Tok == TB'(TOKENS-1)) begin
					Tok <= 0;
					Iter <= Iter == IB'(ITERS-1)? 0 : Iter + 1;
				end
				else  Tok <= Tok + 1;
			end
		end
		assign	w_word = WEIGHTS[((int'(Iter)*NF + int'(Nf))*SF + int'(Sf))*WORD +: WORD];
	end : genSets
	else begin : genOneSet
		assign	w_word = WEIGHTS[(int'(Nf)*SF + int'(Sf))*WORD +: WORD];
	end : genOneSet

	// per lane: dot product over SIMD kernel positions, added to the running sum (restarted at sf = 0)
	acc_vec_t  sum;
	for(genvar  p = 0; p < PE; p++) begin : genLane
		acc_t  dot;
		always_comb begin
			dot = '0;
			for(int unsigned  s = 0; s < SIMD; s++) begin
				automatic logic [A_BITS-1:0]  a = s_tdata[(s*PE + p)*A_BITS +: A_BITS];
				automatic logic [W_BITS-1:0]  w = w_word[(s*PE + p)*W_BITS +: W_BITS];
				// one extra bit makes unsigned operands non-negative signed values
				automatic logic signed [A_BITS:0]  ax = A_SIGNED? $signed({a[A_BITS-1], a}) : $signed({1'b0, a});
				automatic logic signed [W_BITS:0]  wx = W_SIGNED? $signed({w[W_BITS-1], w}) : $signed({1'b0, w});
				automatic logic signed [PROD_BITS-1:0]  prod = ax * wx;
				dot += acc_t'(prod);
			end
		end
		assign	sum[p] = (Sf == 0? acc_t'(0) : acc_t'(Acc[p])) + dot;
	end : genLane

	always_ff @(posedge clk) begin
		if(rst) begin
			Sf <= 0;
			Nf <= 0;
			Acc <= '0;
			OAcc <= '0;
			OVld <= 0;
		end
		else begin
			if(take) begin
				Acc <= sum;
				if(last_sf) begin
					Sf <= 0;
					Nf <= (Nf == NF_BITS'(NF-1))? 0 : Nf + 1;
					OAcc <= sum;
					OVld <= 1;
				end
				else begin
					Sf <= Sf + 1;
					if(m_tready)  OVld <= 0;
				end
			end
			else if(m_tready)  OVld <= 0;
		end
	end

	assign	m_tvalid = OVld;
	assign	m_tdata = OUT_STREAM'(OAcc);

endmodule : dw_vvau
