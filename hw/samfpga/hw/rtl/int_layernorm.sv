// Integer LayerNorm over C channels per token, PE lanes per beat: the arithmetic of
// sw/samfpga/kernels/layernorm.py (int_layernorm), bit for bit.
//   S1 = sum x, S2 = sum x^2 (while the token streams in and is buffered)
//   E  = max(C*S2 - S1^2 + EPS, 1);  k = ceil((bitlen(E) - T)/2);  m = E >> 2k (<< -2k);  R = RSQRT[m - 2^(T-2)]
//   z  = clip(+-((C*x - S1) * R + 2^(sh-1) >>> sh)),  sh = SHIFT_BIAS + k, - on NEG channels (on the way out)
// Three phases per token, not overlapped: C/PE input beats, 5 cycles of statistics, C/PE output beats.
// The token buffer is read asynchronously (LUTRAM); the RSQRT table comes from RSQRT_FILE ($readmemh, one hex
// entry per line, 3*2^(T-2) entries). Lane i of a beat occupies bits [i*BITS +: BITS] (FINN's packing).
// In a rolled body (ITERS > 1) the layer serves ITERS blocks in turn, one pass of TOKENS tokens each: EPS and NEG
// hold one entry per iteration (iteration i's EPS in bits [i*64 +: 64], its NEG in [i*C +: C]), and the layer
// counts its own tokens to know the iteration, so nothing outside it selects the parameter set.
// With RT_C = 1 (the engine: one LayerNorm for layers of different widths) the layer's shape and parameters are
// ports, held while its tokens pass: cfg_beats beats per token (C' = cfg_beats * PE channels, 1 <= cfg_beats <=
// C/PE; C and SB size the buffer and the statistics for the widest layer), cfg_eps = round(C'^2 * eps), cfg_neg
// (channel c in bit c). The arithmetic is the kernel's at C', so C' * x and C' * S2 are products by a run-time
// value. The cfg ports are ignored when RT_C = 0 (tie them off).
// With PIPELINED = 1 the layer holds two tokens (two buffer banks, their statistics kept per bank): token t + 1
// streams in while token t streams out, the statistics (4 cycles) of one token at a time between them, so a token
// costs max(C/PE, 5) cycles in the steady state instead of 2 C/PE + 4 (ITERS = 1 only).
module int_layernorm #(
	int unsigned  C = 16,
	int unsigned  PE = 1,
	int unsigned  IN_BITS = 8,
	bit  IN_SIGNED = 1,
	int unsigned  OUT_BITS = 14,
	int unsigned  ITERS = 1,            // parameter sets (blocks of a rolled body)
	int unsigned  TOKENS = 1,           // tokens per pass (one block's map)
	logic [ITERS*64-1:0]  EPS = '0,     // round(C^2 * eps) per iteration
	int unsigned  T = 10,               // table index bits (even)
	int unsigned  RB = 16,              // table entry bits
	int unsigned  SHIFT_BIAS = 16,      // S - F
	int unsigned  SB = 48,              // width of the statistics (holds C^2 * max|x|^2 + EPS, signed)
	logic [ITERS*C-1:0]  NEG = '0,      // per iteration: channels whose output is negated (before saturation)
	parameter  RSQRT_FILE = "",
	bit  RT_C = 0,                      // run-time channels and parameters (cfg_*)
	bit  PIPELINED = 0,                 // two token buffers: a token streams in while the previous one streams out

	localparam int unsigned  BEATS = C / PE,
	localparam int unsigned  CB = $clog2(BEATS + 1),
	localparam int unsigned  I_STREAM = (PE*IN_BITS + 7)/8 * 8,
	localparam int unsigned  O_STREAM = (PE*OUT_BITS + 7)/8 * 8,
	localparam int unsigned  DB = IN_BITS + $clog2(C) + 3,    // d = C*x - S1 (signed)
	localparam int unsigned  PB = DB + RB + 1,                // d * R (signed)
	localparam int unsigned  AB = BEATS > 1 ? $clog2(BEATS) : 1,
	localparam int unsigned  IB = ITERS > 1 ? $clog2(ITERS) : 1,
	localparam int unsigned  TB = TOKENS > 1 ? $clog2(TOKENS) : 1
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [CB-1:0]  cfg_beats,	// RT_C: beats per token
	input	logic [63:0]  cfg_eps,	// RT_C: round(C'^2 * eps)
	input	logic [C-1:0]  cfg_neg,	// RT_C: negated channels

	input	logic [I_STREAM-1:0]  i_tdata,
	input	logic  i_tvalid,
	output	logic  i_tready,

	output	logic [O_STREAM-1:0]  o_tdata,
	output	logic  o_tvalid,
	input	logic  o_tready
);

	if(PIPELINED && ITERS > 1)  $error("int_layernorm: PIPELINED needs ITERS = 1");

	logic signed [SB-1:0]  S1 = '0, S2 = '0, P1 = '0, P2 = '0, E = '0;
	int  K = 0;           // k of the kernel (may be negative)
	logic [RB-1:0]  R = '0;
	logic [RB-1:0]  Rsqrt[3 << (T-2)];
	logic [IB-1:0]  Iter = '0;          // parameter set of the current pass
	logic [TB-1:0]  Tok = '0;           // token within the pass
	uwire [63:0]  eps;
	uwire [C-1:0]  neg;
	if(RT_C) begin : genRt
		assign  eps = cfg_eps;
		assign  neg = cfg_neg;
	end : genRt
	else if(ITERS > 1) begin : genSets
		assign  eps = EPS[Iter*64 +: 64];
		assign  neg = NEG[Iter*C +: C];
	end : genSets
	else begin : genOneSet  // constants: no select logic
		assign  eps = EPS[63:0];
		assign  neg = NEG[C-1:0];
	end : genOneSet
	initial begin
		if(RSQRT_FILE != "")  $readmemh(RSQRT_FILE, Rsqrt);
	end

	// lane values of the incoming beat, sign/zero extended
	logic signed [SB-1:0]  lane_sum, lane_sq;
	always_comb begin
		lane_sum = '0;
		lane_sq = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [IN_BITS-1:0]  raw = i_tdata[l*IN_BITS +: IN_BITS];
			automatic logic signed [IN_BITS:0]  v = IN_SIGNED? $signed({raw[IN_BITS-1], raw}) : $signed({1'b0, raw});
			lane_sum += SB'(v);
			lane_sq += SB'(v) * SB'(v);
		end
	end

	// bit length of E and the table index
	int  blen;
	always_comb begin
		blen = 0;
		for(int  b = 0; b < SB; b++)  if(E[b])  blen = b + 1;
	end
	logic [SB-1:0]  m;
	always_comb begin
		if(K >= 0)  m = E >>> (2*K);
		else        m = E <<< (-2*K);
	end

	uwire signed [SB-1:0]  c_s = RT_C? SB'(cfg_beats) * SB'(PE) : SB'(C);	// the layer's C
	uwire [AB-1:0]  last_ptr = RT_C? AB'(cfg_beats - 1) : AB'(BEATS-1);

	// output lanes: combinational from the output token's buffer entry (o_rd, its beat o_ptr), its S1, R and k
	logic [PE*IN_BITS-1:0]  o_rd;
	logic [AB-1:0]  o_ptr;
	logic signed [SB-1:0]  o_s1;
	logic [RB-1:0]  o_r;
	int  o_k;
	int  sh;
	assign	sh = int'(SHIFT_BIAS) + o_k;
	always_comb begin
		o_tdata = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [IN_BITS-1:0]  raw = o_rd[l*IN_BITS +: IN_BITS];
			automatic logic signed [IN_BITS:0]  v = IN_SIGNED? $signed({raw[IN_BITS-1], raw}) : $signed({1'b0, raw});
			automatic logic signed [DB-1:0]  d = DB'(c_s * SB'(v) - o_s1);
			automatic logic signed [PB-1:0]  p = PB'(d) * $signed({1'b0, o_r});
			automatic logic signed [PB-1:0]  r = (p + (PB'(1) <<< (sh - 1))) >>> sh;
			automatic logic signed [PB-1:0]  z = neg[o_ptr*PE + l] ? -r : r;
			automatic logic signed [PB-1:0]  lo = -(PB'(1) <<< (OUT_BITS-1));
			automatic logic signed [PB-1:0]  hi = (PB'(1) <<< (OUT_BITS-1)) - 1;
			automatic logic signed [PB-1:0]  c = z < lo ? lo : z > hi ? hi : z;
			o_tdata[l*OUT_BITS +: OUT_BITS] = c[OUT_BITS-1:0];
		end
	end
	if(!PIPELINED) begin : genSeq  // three phases per token, not overlapped
	typedef enum logic [2:0] { IN, ST0, ST1, ST2, ST3, OUT } state_t;
	state_t  State = IN;
	logic [PE*IN_BITS-1:0]  Buf[BEATS];
	logic [AB-1:0]  Ptr = '0;
	uwire  last_beat = Ptr == last_ptr;
	assign	i_tready = State == IN;
	assign	o_tvalid = State == OUT;
	assign	o_rd = Buf[Ptr];
	assign	o_ptr = Ptr;
	assign	o_s1 = S1;
	assign	o_r = R;
	assign	o_k = K;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IN;
			Ptr <= '0;
			S1 <= '0;
			S2 <= '0;
			Iter <= '0;
			Tok <= '0;
		end
		else begin
			unique case(State)
			IN: if(i_tvalid) begin
				Buf[Ptr] <= i_tdata[PE*IN_BITS-1:0];
				S1 <= S1 + lane_sum;
				S2 <= S2 + lane_sq;
				if(last_beat) begin
					Ptr <= '0;
					State <= ST0;
				end
				else  Ptr <= Ptr + 1;
			end
			ST0: begin
				P1 <= c_s * S2;
				P2 <= S1 * S1;
				State <= ST1;
			end
			ST1: begin
				automatic logic signed [SB-1:0]  e = P1 - P2 + SB'(eps);
				E <= e < 1 ? SB'(1) : e;
				State <= ST2;
			end
			ST2: begin
				// ceil((blen - T) / 2) for either sign
				K <= (blen - int'(T) + 1) >>> 1;
				State <= ST3;
			end
			ST3: begin
				R <= Rsqrt[m[T-1:0] - (1 << (T-2))];
				State <= OUT;
			end
			OUT: if(o_tready) begin
				if(last_beat) begin
					Ptr <= '0;
					S1 <= '0;
					S2 <= '0;
					State <= IN;
					if(Tok == TB'(TOKENS-1)) begin
						Tok <= '0;
						Iter <= Iter == IB'(ITERS-1) ? '0 : Iter + 1;
					end
					else  Tok <= Tok + 1;
				end
				else  Ptr <= Ptr + 1;
			end
			default:  State <= IN;
			endcase
		end
	end

	end : genSeq
	else begin : genPipe
		// input: token beats into bank WBk (its sums in A1 / A2); statistics: the bank whose last beat came, 4 stages
		// from S1 / S2; output: bank RBk once its statistics are in (Rdy), with that bank's S1, k and R
		logic [PE*IN_BITS-1:0]  Buf[2 << AB];	// bank b's beat i at {b, i}
		logic  WBk = 0, RBk = 0, SBk = 0;
		logic [1:0]  Full = '0, Rdy = '0;
		logic [AB-1:0]  WPtr = '0, RPtr = '0;
		logic signed [SB-1:0]  A1 = '0, A2 = '0;
		logic signed [SB-1:0]  BS1[2];
		int  BK[2];
		logic [RB-1:0]  BR[2];
		logic [2:0]  St = '0;   // 0: statistics idle, 1-4: stage
		logic  Commit = 0;      // the statistics' results (S1, k, R: the table read as a plain register) to bank CBk
		logic  CBk = 0;
		uwire  w_last = WPtr == last_ptr;
		uwire  r_last = RPtr == last_ptr;
		// a token's last beat waits while the statistics of the previous one are still under way
		assign	i_tready = !Full[WBk] && !(w_last && St != 0);
		assign	o_tvalid = Rdy[RBk];
		assign	o_rd = Buf[{RBk, RPtr}];
		assign	o_ptr = RPtr;
		assign	o_s1 = BS1[RBk];
		assign	o_r = BR[RBk];
		assign	o_k = BK[RBk];

		always_ff @(posedge clk) begin
			if(rst) begin
				WBk <= 0;  RBk <= 0;  Full <= '0;  Rdy <= '0;  WPtr <= '0;  RPtr <= '0;  A1 <= '0;  A2 <= '0;  St <= '0;
				Commit <= 0;
			end
			else begin
				automatic logic [1:0]  full = Full, rdy = Rdy;
				if(i_tvalid && i_tready) begin
					Buf[{WBk, WPtr}] <= i_tdata[PE*IN_BITS-1:0];
					if(w_last) begin
						S1 <= A1 + lane_sum;
						S2 <= A2 + lane_sq;
						A1 <= '0;
						A2 <= '0;
						WPtr <= '0;
						full[WBk] = 1;
						SBk <= WBk;
						WBk <= !WBk;
						St <= 1;
					end
					else begin
						A1 <= A1 + lane_sum;
						A2 <= A2 + lane_sq;
						WPtr <= WPtr + 1;
					end
				end
				unique case(St)
				1: begin
					P1 <= c_s * S2;
					P2 <= S1 * S1;
					St <= 2;
				end
				2: begin
					automatic logic signed [SB-1:0]  e = P1 - P2 + SB'(eps);
					E <= e < 1 ? SB'(1) : e;
					St <= 3;
				end
				3: begin
					K <= (blen - int'(T) + 1) >>> 1;
					St <= 4;
				end
				4: begin
					R <= Rsqrt[m[T-1:0] - (1 << (T-2))];
					Commit <= 1;
					CBk <= SBk;
					St <= 0;
				end
				default: ;
				endcase
				// a cycle later (S1 and k still the token's: the next token's last beat is taken at the earliest in
				// this cycle, its statistics start after it)
				if(Commit) begin
					BS1[CBk] <= S1;
					BK[CBk] <= K;
					BR[CBk] <= R;
					rdy[CBk] = 1;
					Commit <= 0;
				end
				if(o_tvalid && o_tready) begin
					if(r_last) begin
						RPtr <= '0;
						full[RBk] = 0;
						rdy[RBk] = 0;
						RBk <= !RBk;
					end
					else  RPtr <= RPtr + 1;
				end
				Full <= full;
				Rdy <= rdy;
			end
		end
	end : genPipe

endmodule : int_layernorm
