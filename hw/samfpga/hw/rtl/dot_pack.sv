// PE dot products of SIMD lanes with two products per DSP slice: PE lanes 2q and 2q+1 share slice (q, s) (issue 15).
//
// The slice multiplies one activation by the packed weight w_hi * 2^18 + w_lo (the DSP48E2's 27-bit pre-adder
// output times its 18-bit B input, UG579) and adds the product to its neighbour's P: along a segment of K slices
// the P cascade holds H * 2^18 + L, with L = sum of a * w_lo and H = sum of a * w_hi. K is the longest segment
// whose L stays inside 18 signed bits (K * max|a * w| < 2^17: 7 for INT8 x INT8), so L is the low 18 bits read as
// signed and H = (P >>> 18) + P[17] (the borrow L's sign took from H). The segments' L and H are then summed in a
// pipelined fabric adder tree per PE lane. Against dot_chain.sv this halves the DSPs for two adder trees of
// ceil(SIMD / K) terms and an 18-bit split per segment; the skew shift registers shrink to K - 1 cycles.
//
// Interface as dot_chain.sv (free-running, no stall): in cycle t a SIMD-vector a and PE x SIMD weights w (element
// order of finn's MVU); dot[p] of that vector leaves LATENCY cycles later, and ctl_in of cycle t leaves on ctl_out
// with it (the caller's bookkeeping travels beside the data; its bit 0 is the only one reset, a valid flag).
// PE must be even; activations up to 17 bits, weights up to 8 bits (the packed weight fills 27 bits).
module dot_pack #(
	int unsigned  SIMD = 4,
	int unsigned  PE = 2,
	int unsigned  A_BITS = 8,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 24,
	bit  A_SIGNED = 1,
	bit  W_SIGNED = 1,
	int unsigned  CTL_BITS = 1,

	localparam int unsigned  K = seg_len(A_BITS, W_BITS, A_SIGNED, W_SIGNED),
	localparam int unsigned  KS = K < SIMD? K : SIMD,	// slices in the longest segment
	localparam int unsigned  G = (SIMD + K - 1) / K,	// segments
	localparam int unsigned  LEVELS = G > 1? $clog2(G) : 0,
	// operand registers, product register, KS post-adder registers, the split, the tree's levels
	localparam int unsigned  LATENCY = KS + 3 + LEVELS
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [SIMD*A_BITS-1:0]  a,
	input	logic [PE*SIMD*W_BITS-1:0]  w,
	input	logic [CTL_BITS-1:0]  ctl_in,
	output	logic [PE-1:0][ACC_BITS-1:0]  dot,
	output	logic [CTL_BITS-1:0]  ctl_out
);

	// the longest segment whose low-lane sum stays within 18 signed bits
	function automatic int unsigned seg_len(int unsigned  ab, int unsigned  wb, bit  as, bit  ws);
		automatic longint  amax = as? 64'd1 << (ab - 1) : (64'd1 << ab) - 1;
		automatic longint  wmax = ws? 64'd1 << (wb - 1) : (64'd1 << wb) - 1;
		automatic longint  k = ((64'd1 << 17) - 1) / (amax * wmax);
		return  k < 1? 1 : k > 1024? 1024 : int'(k);
	endfunction : seg_len

	localparam int unsigned  LANE = 18;	// low lane width in the slice's P
	typedef logic signed [47:0]  p_t;
	typedef logic signed [ACC_BITS-1:0]  acc_t;
	if(PE % 2 != 0)  $error("dot_pack needs an even PE (two PE lanes per slice)");
	if(W_BITS > 8 || A_BITS > 17)  $error("dot_pack: weights up to 8 bits, activations up to 17");
	if(seg_len(A_BITS, W_BITS, A_SIGNED, W_SIGNED) * 1 == 0)  $error("dot_pack: no segment length");

	// lane s = k*K + j waits j + (KS - K_k) cycles, so that every segment's last slice finishes in the same cycle
	function automatic int unsigned lane_delay(int unsigned  s);
		automatic int unsigned  k = s / K;
		automatic int unsigned  kk = SIMD - k*K < K? SIMD - k*K : K;
		return  s % K + (KS - kk);
	endfunction : lane_delay

	logic [SIMD-1:0][A_BITS-1:0]  ASk;
	logic [PE-1:0][SIMD-1:0][W_BITS-1:0]  WSk;
	for(genvar  s = 0; s < SIMD; s++) begin : genSkew
		localparam int unsigned  D = lane_delay(s);
		if(D == 0) begin : genNow
			assign	ASk[s] = a[s*A_BITS +: A_BITS];
			for(genvar  p = 0; p < PE; p++)  assign	WSk[p][s] = w[(p*SIMD + s)*W_BITS +: W_BITS];
		end : genNow
		else begin : genLate
			logic [A_BITS-1:0]  ASr[D];
			always_ff @(posedge clk) begin
				ASr[0] <= a[s*A_BITS +: A_BITS];
				for(int unsigned  i = 1; i < D; i++)  ASr[i] <= ASr[i-1];
			end
			assign	ASk[s] = ASr[D-1];
			for(genvar  p = 0; p < PE; p++) begin : genW
				logic [W_BITS-1:0]  WSr[D];
				always_ff @(posedge clk) begin
					WSr[0] <= w[(p*SIMD + s)*W_BITS +: W_BITS];
					for(int unsigned  i = 1; i < D; i++)  WSr[i] <= WSr[i-1];
				end
				assign	WSk[p][s] = WSr[D-1];
			end : genW
		end : genLate
	end : genSkew

	for(genvar  q = 0; q < PE/2; q++) begin : genPair
		// per segment: its P cascade, then the split into the two lanes
		logic [G-1:0][ACC_BITS-1:0]  Lo, Hi;
		for(genvar  k = 0; k < G; k++) begin : genSeg
			localparam int unsigned  N = SIMD - k*K < K? SIMD - k*K : K;
			uwire p_t  pc[N+1];
			assign	pc[0] = '0;
			for(genvar  j = 0; j < N; j++) begin : genSlice
				localparam int unsigned  S = k*K + j;
				uwire [W_BITS-1:0]  wl = WSk[2*q][S];
				uwire [W_BITS-1:0]  wh = WSk[2*q+1][S];
				uwire [A_BITS-1:0]  as = ASk[S];
				// sign- or zero-extension: wires only
				uwire signed [8:0]  wlx = W_SIGNED? 9'($signed(wl)) : 9'($signed({1'b0, wl}));
				uwire signed [8:0]  whx = W_SIGNED? 9'($signed(wh)) : 9'($signed({1'b0, wh}));
				uwire signed [17:0]  ax = A_SIGNED? 18'($signed(as)) : 18'($signed({1'b0, as}));
				mac_slice slice (.clk, .w_hi(whx), .w_lo(wlx), .a(ax), .pcin(pc[j]), .p(pc[j+1]));
			end : genSlice
			uwire p_t  ps = pc[N];
			always_ff @(posedge clk) begin
				Lo[k] <= acc_t'($signed(ps[LANE-1:0]));
				Hi[k] <= acc_t'((ps >>> LANE) + p_t'(ps[LANE-1]));
			end
		end : genSeg

		// pipelined adder tree over the segments: level l+1 entry i = level l entries 2i and 2i+1
		logic [LEVELS:0][G-1:0][ACC_BITS-1:0]  TL, TH;
		assign	TL[0] = Lo;
		assign	TH[0] = Hi;
		for(genvar  l = 0; l < LEVELS; l++) begin : genLevel
			localparam int unsigned  CNT = (G + (1 << l) - 1) >> l;	// entries at level l
			for(genvar  i = 0; i < (CNT + 1)/2; i++) begin : genAdd
				always_ff @(posedge clk) begin
					TL[l+1][i] <= 2*i+1 < CNT? acc_t'(TL[l][2*i]) + acc_t'(TL[l][2*i+1]) : TL[l][2*i];
					TH[l+1][i] <= 2*i+1 < CNT? acc_t'(TH[l][2*i]) + acc_t'(TH[l][2*i+1]) : TH[l][2*i];
				end
			end : genAdd
			for(genvar  i = (CNT + 1)/2; i < G; i++) begin : genZero
				assign	TL[l+1][i] = '0;
				assign	TH[l+1][i] = '0;
			end : genZero
		end : genLevel
		assign	dot[2*q] = TL[LEVELS][0];
		assign	dot[2*q+1] = TH[LEVELS][0];
	end : genPair

	// the caller's bookkeeping, LATENCY cycles late: only the valid flag (bit 0) is reset, so the rest can be SRLs
	logic [LATENCY-1:0]  VDelay = '0;
	logic [LATENCY-1:0][CTL_BITS-1:0]  CDelay;
	always_ff @(posedge clk) begin
		if(rst)  VDelay <= '0;
		else  VDelay <= {VDelay[LATENCY-2:0], ctl_in[0]};
		CDelay <= {CDelay[LATENCY-2:0], ctl_in};
	end
	if(CTL_BITS > 1) begin : genCtl
		assign	ctl_out = {CDelay[LATENCY-1][CTL_BITS-1:1], VDelay[LATENCY-1]};
	end : genCtl
	else begin : genVld
		assign	ctl_out = VDelay[LATENCY-1];
	end : genVld

endmodule : dot_pack
