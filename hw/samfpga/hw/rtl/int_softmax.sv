// Integer softmax over rows of N logits, PE lanes per beat, with the logit scale, an additive per-row bias
// table (attention relative-position bias) and the output quantizer folded in: the arithmetic of
// sw/samfpga/kernels/softmax.py (int_softmax), bit for bit.
//   u  = (a*MULT + BIAS[row mod ROWS][j] + 2^(P-1)) >>> P      (input phase: N/PE beats, running max)
//   e  = EXP[(max-u) mod 2^G] >> ((max-u) >> G), 0 beyond E     (exponent phase: N/PE cycles, running sum S)
//   RC = K / S                                                  (restoring division: KB cycles)
//   y  = min((e*RC + 2^(W-1)) >> W, 2^OUT_BITS - 1)             (output phase: N/PE beats)
// Phases are not overlapped. Tables: EXP_FILE (2^G entries of E+1 bits, one per line), BIAS_FILE (ROWS*N signed
// entries of BB bits, row-major, packed PE to a line, entry j of a beat in bits [j*BB +: BB]; ROWS = 0: no bias),
// both $readmemh hex. The bias table is read one beat-wide word per cycle through a register (address one beat
// ahead, one priming cycle per row), so synthesis maps it to block RAM instead of PE asynchronous LUT ROMs.
// SIDE > 0 (a power of two, N = SIDE^2): the bias depends only on the head and the absolute offset of query and
// key in a SIDE x SIDE window (TinyViT's attention bias): BIAS_FILE then holds ROWS/N * N entries, one per line,
// BIAS[h][|yq-yk|*SIDE + |xq-xk|] for row r = h*N + q, and each lane looks its entry up in a small LUT ROM.
// In a rolled body (ITERS > 1) the layer serves ITERS blocks in turn, one pass of TOKENS rows each: MULT and K hold
// one 64-bit entry per iteration (iteration i's in bits [i*64 +: 64]), BIAS_FILE the ITERS tables one after the
// other, and the layer counts its own rows to know the iteration (a common pre-shift P: the generator scales each
// iteration's MULT and bias by 2^(P - P_i), which leaves u unchanged).
module int_softmax #(
	int unsigned  N = 16,
	int unsigned  PE = 1,
	int unsigned  IN_BITS = 16,
	bit  IN_SIGNED = 1,
	int unsigned  OUT_BITS = 8,
	int unsigned  ITERS = 1,            // parameter sets (blocks of a rolled body)
	int unsigned  TOKENS = 1,           // rows per pass (one block's map)
	logic [ITERS*64-1:0]  MULT = 1,     // per iteration
	int unsigned  MB = 16,              // bits of MULT (unsigned)
	int unsigned  P = 1,                // pre-shift
	int unsigned  ROWS = 0,
	int unsigned  BB = 16,              // bias entry bits (signed)
	int unsigned  SIDE = 0,             // > 0: compact absolute-offset bias table (see above)
	int unsigned  G = 6,
	int unsigned  E = 16,
	int unsigned  W = 40,
	logic [ITERS*64-1:0]  K = 1,        // per iteration
	int unsigned  KB = 48,              // bits of K
	int unsigned  UB = 40,              // width of u (signed) and of the row buffer entries
	parameter  EXP_FILE = "",
	parameter  BIAS_FILE = "",

	localparam int unsigned  BEATS = N / PE,
	localparam int unsigned  I_STREAM = (PE*IN_BITS + 7)/8 * 8,
	localparam int unsigned  O_STREAM = (PE*OUT_BITS + 7)/8 * 8,
	localparam int unsigned  AB = BEATS > 1 ? $clog2(BEATS) : 1,
	localparam int unsigned  NBW = ROWS > 0 && SIDE == 0 ? ROWS*BEATS : 1,   // full table: words of PE entries
	localparam int unsigned  HEADS = SIDE > 0 ? ROWS / N : 1,                // compact table: heads x N entries
	localparam int unsigned  SB = SIDE > 1 ? $clog2(SIDE) : 1,
	localparam int unsigned  QB = N > 1 ? $clog2(N) : 1,
	localparam int unsigned  HB = HEADS > 1 ? $clog2(HEADS) : 1,
	localparam int unsigned  BA = ITERS*NBW > 1 ? $clog2(ITERS*NBW) : 1,
	localparam int unsigned  CA = ITERS*HEADS*N > 1 ? $clog2(ITERS*HEADS*N) : 1,   // compact table address
	localparam int unsigned  IB = ITERS > 1 ? $clog2(ITERS) : 1,
	localparam int unsigned  TB = TOKENS > 1 ? $clog2(TOKENS) : 1,
	localparam int unsigned  SSB = E + $clog2(N) + 2,          // sum of exponents (unsigned)
	localparam int unsigned  XB = (KB > W ? KB : W) + 2          // e * RC + rounding (unsigned)
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [I_STREAM-1:0]  i_tdata,
	input	logic  i_tvalid,
	output	logic  i_tready,

	output	logic [O_STREAM-1:0]  o_tdata,
	output	logic  o_tvalid,
	input	logic  o_tready
);

	typedef enum logic [2:0] { IN, EXPO, DIV, OUT } state_t;
	state_t  State = IN;

	logic [PE*UB-1:0]  Buf[BEATS];
	logic [AB-1:0]  Ptr = '0;
	logic [BA-1:0]  RowBase = '0;        // address of this row's first bias word (in this iteration's table)
	logic [IB-1:0]  Iter = '0;          // parameter set of the current pass
	logic [TB-1:0]  Row = '0;           // row within the pass
	uwire [63:0]  mult, kk;
	uwire [IB-1:0]  iter;
	if(ITERS > 1) begin : genSets
		assign  iter = Iter;
		assign  mult = MULT[Iter*64 +: 64];
		assign  kk = K[Iter*64 +: 64];
	end : genSets
	else begin : genOneSet  // constants: no select logic
		assign  iter = '0;
		assign  mult = MULT[63:0];
		assign  kk = K[63:0];
	end : genOneSet
	logic  Primed = ROWS == 0 || SIDE > 0;   // BiasQ holds the bias word of beat Ptr
	logic [HB-1:0]  Head = '0;          // compact table: head and query of this row
	logic [QB-1:0]  Query = '0;
	logic signed [UB-1:0]  Max = '0;
	logic [SSB-1:0]  Sum = '0;
	logic [KB-1:0]  Quot = '0;
	logic [SSB:0]  Rem = '0;
	int  DivBit = 0;

	logic [E:0]  Exp[1 << G];
	// bias word of the next beat: registered read, address one accepted beat ahead (the last beat's look-ahead
	// address is never used: the row ends and the next row primes again)
	uwire  accept = State == IN && i_tvalid && i_tready;
	uwire [BA-1:0]  bias_addr = BA'(iter*NBW) + RowBase + BA'(accept && Ptr != AB'(BEATS-1) ? Ptr + 1 : Ptr);
	logic [PE*BB-1:0]  BiasQ;             // the bias entries of the current beat
	if(ROWS > 0 && SIDE == 0) begin : genFullBias
		logic [PE*BB-1:0]  Bias[ITERS*NBW];
		initial  if(BIAS_FILE != "")  $readmemh(BIAS_FILE, Bias);
		always_ff @(posedge clk)  BiasQ <= Bias[bias_addr];
	end : genFullBias
	else if(SIDE > 0) begin : genCompactBias
		logic [BB-1:0]  Bias[ITERS*HEADS*N];
		initial  if(BIAS_FILE != "")  $readmemh(BIAS_FILE, Bias);
		uwire [SB-1:0]  yq = Query[QB-1:SB];
		uwire [SB-1:0]  xq = Query[SB-1:0];
		always_comb begin
			for(int unsigned  l = 0; l < PE; l++) begin
				automatic logic [QB-1:0]  k = QB'(Ptr*PE + l);
				automatic logic [SB-1:0]  yk = k[QB-1:SB];
				automatic logic [SB-1:0]  xk = k[SB-1:0];
				automatic logic [SB-1:0]  dy = yq > yk ? yq - yk : yk - yq;
				automatic logic [SB-1:0]  dx = xq > xk ? xq - xk : xk - xq;
				BiasQ[l*BB +: BB] = Bias[CA'(iter*HEADS*N) + CA'(HEADS > 1 ? {Head, dy, dx} : {dy, dx})];
			end
		end
	end : genCompactBias
	else begin : genNoBias
		assign  BiasQ = '0;
	end : genNoBias
	initial  if(EXP_FILE != "")  $readmemh(EXP_FILE, Exp);


	// input phase: u per lane, beat maximum
	logic [PE*UB-1:0]  u_beat;
	logic signed [UB-1:0]  beat_max;
	always_comb begin
		u_beat = '0;
		beat_max = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [IN_BITS-1:0]  raw = i_tdata[l*IN_BITS +: IN_BITS];
			automatic logic signed [UB+P-1:0]  a = IN_SIGNED? (UB+P)'($signed(raw)) : (UB+P)'($signed({1'b0, raw}));
			automatic logic signed [UB+P-1:0]  b = ROWS > 0 ? (UB+P)'($signed(BiasQ[l*BB +: BB])) : '0;
			automatic logic signed [UB+P-1:0]  t = a * (UB+P)'($signed({1'b0, MB'(mult)})) + b + ((UB+P)'(1) <<< (P-1));
			automatic logic signed [UB+P-1:0]  u = t >>> P;
			u_beat[l*UB +: UB] = u[UB-1:0];
			if(l == 0 || $signed(u[UB-1:0]) > beat_max)  beat_max = u[UB-1:0];
		end
	end

	// exponent phase: e per lane of the buffered beat, beat sum
	uwire [PE*UB-1:0]  rd = Buf[Ptr];
	logic [PE*UB-1:0]  e_beat;
	logic [SSB-1:0]  beat_sum;
	always_comb begin
		e_beat = '0;
		beat_sum = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [UB-1:0]  v = Max - $signed(rd[l*UB +: UB]);
			automatic logic [UB-1:0]  q = v >> G;
			automatic logic [E:0]  t = Exp[v[G-1:0]];
			automatic logic [E:0]  e = q > UB'(E) ? '0 : t >> q;
			e_beat[l*UB +: UB] = UB'(e);
			beat_sum += SSB'(e);
		end
	end

	// output phase
	always_comb begin
		o_tdata = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [XB-1:0]  x = XB'(rd[l*UB +: E+1]) * XB'(Quot);
			automatic logic [XB-1:0]  y = (x + (XB'(1) << (W-1))) >> W;
			automatic logic [XB-1:0]  ymax = (XB'(1) << OUT_BITS) - 1;
			automatic logic [XB-1:0]  c = y > ymax ? ymax : y;
			o_tdata[l*OUT_BITS +: OUT_BITS] = c[OUT_BITS-1:0];
		end
	end

	assign	i_tready = State == IN && Primed;
	assign	o_tvalid = State == OUT;

	// one step of the restoring division K / Sum, most significant quotient bit first
	uwire [SSB:0]  rem_shift = {Rem[SSB-1:0], kk[DivBit]};
	uwire  fits = rem_shift >= {1'b0, Sum};

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IN;
			Ptr <= '0;
			RowBase <= '0;
			Head <= '0;
			Query <= '0;
			Primed <= ROWS == 0 || SIDE > 0;
			Iter <= '0;
			Row <= '0;
		end
		else begin
			unique case(State)
			IN: if(!Primed)  Primed <= 1;
			else if(i_tvalid) begin
				Buf[Ptr] <= u_beat;
				if(Ptr == 0 || beat_max > Max)  Max <= beat_max;
				if(Ptr == AB'(BEATS-1)) begin
					Ptr <= '0;
					Sum <= '0;
					Primed <= ROWS == 0 || SIDE > 0;
					State <= EXPO;
				end
				else  Ptr <= Ptr + 1;
			end
			EXPO: begin
				Buf[Ptr] <= e_beat;
				Sum <= Sum + beat_sum;
				if(Ptr == AB'(BEATS-1)) begin
					Ptr <= '0;
					Rem <= '0;
					Quot <= '0;
					DivBit <= KB - 1;
					State <= DIV;
				end
				else  Ptr <= Ptr + 1;
			end
			DIV: begin
				Rem <= fits ? rem_shift - {1'b0, Sum} : rem_shift;
				Quot[DivBit] <= fits;
				DivBit <= DivBit - 1;
				if(DivBit == 0)  State <= OUT;
			end
			OUT: if(o_tready) begin
				if(Ptr == AB'(BEATS-1)) begin
					Ptr <= '0;
					if(ROWS > 0)  RowBase <= (RowBase + BA'(BEATS) == BA'(NBW)) ? '0 : RowBase + BA'(BEATS);
					if(SIDE > 0) begin
						Query <= Query + 1;  // N = 2^QB: wraps to the next head's first query
						if(Query == QB'(N-1))  Head <= (Head == HB'(HEADS-1)) ? '0 : Head + 1;
					end
					if(Row == TB'(TOKENS-1)) begin
						Row <= '0;
						Iter <= Iter == IB'(ITERS-1) ? '0 : Iter + 1;
					end
					else  Row <= Row + 1;
					State <= IN;
				end
				else  Ptr <= Ptr + 1;
			end
			default:  State <= IN;
			endcase
		end
	end

endmodule : int_softmax
