// PE dot products of SIMD lanes on a systolic chain of DSP slices, one MAC per slice (issue 15).
//
// finn-rtllib's mvu.sv packs two 8-bit lanes into one DSP48E2 and pays for it in fabric: per SIMD input a LUT pair
// recovering the cross-lane borrow and per lane an adder tree of SIMD inputs (about 64 LUTs per MAC at PE = 2,
// SIMD = 32, W8A8). Here every product has a slice of its own and the SIMD sum runs down the slices' post-adders
// (P = P_prev + A * B), so the sum costs no fabric adders; what the fabric pays for is the skew that makes lane s
// meet the partial sum of lane s - 1: lane s's operands wait s cycles in shift registers (SRL LUTs, the activation
// lanes shared by all PE chains). On a board whose DSPs have slack and whose LUTs bind (the KV260 plans), the chain
// trades one DSP for about 100 LUTs.
//
// Interface: a free-running pipeline, no stall. In cycle t the caller presents one SIMD-vector of activations and
// PE x SIMD weights; dot[p] = sum_s a[s] * w[p][s] of that vector leaves LATENCY cycles later, and ctl_in of cycle t
// leaves on ctl_out with it (the caller's bookkeeping; bit 0, a valid flag, is the only one reset). Element order
// as finn's MVU: activation s at a[s*A_BITS +: A_BITS], weight (p, s) at w[(p*SIMD + s)*W_BITS +: W_BITS].
// Operands are sign- or zero-extended by one bit (A_SIGNED / W_SIGNED), so unsigned 8-bit inputs are exact too.
module dot_chain #(
	int unsigned  SIMD = 4,
	int unsigned  PE = 2,
	int unsigned  A_BITS = 8,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 24,
	bit  A_SIGNED = 1,
	bit  W_SIGNED = 1,
	int unsigned  CTL_BITS = 1,

	// operand registers (the slice's A/B registers), product register (M), then one post-adder register per lane
	localparam int unsigned  LATENCY = SIMD + 2
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [SIMD*A_BITS-1:0]  a,
	input	logic [PE*SIMD*W_BITS-1:0]  w,
	input	logic [CTL_BITS-1:0]  ctl_in,
	output	logic [PE-1:0][ACC_BITS-1:0]  dot,
	output	logic [CTL_BITS-1:0]  ctl_out
);

	localparam int unsigned  PROD_BITS = A_BITS + W_BITS + 2;
	if(ACC_BITS < PROD_BITS)  $error("ACC_BITS must hold one product (%0d bits)", PROD_BITS);
	typedef logic signed [ACC_BITS-1:0]  acc_t;

	// lane s's operands, s cycles late: shift registers without reset or enable, so synthesis maps them to SRLs
	logic [SIMD-1:0][A_BITS-1:0]  ASk;
	logic [PE-1:0][SIMD-1:0][W_BITS-1:0]  WSk;
	for(genvar  s = 0; s < SIMD; s++) begin : genSkew
		if(s == 0) begin : genNow
			assign	ASk[s] = a[s*A_BITS +: A_BITS];
			for(genvar  p = 0; p < PE; p++)  assign	WSk[p][s] = w[(p*SIMD + s)*W_BITS +: W_BITS];
		end : genNow
		else begin : genLate
			logic [A_BITS-1:0]  ASr[s];
			always_ff @(posedge clk) begin
				ASr[0] <= a[s*A_BITS +: A_BITS];
				for(int unsigned  i = 1; i < s; i++)  ASr[i] <= ASr[i-1];
			end
			assign	ASk[s] = ASr[s-1];
			for(genvar  p = 0; p < PE; p++) begin : genW
				logic [W_BITS-1:0]  WSr[s];
				always_ff @(posedge clk) begin
					WSr[0] <= w[(p*SIMD + s)*W_BITS +: W_BITS];
					for(int unsigned  i = 1; i < s; i++)  WSr[i] <= WSr[i-1];
				end
				assign	WSk[p][s] = WSr[s-1];
			end : genW
		end : genLate
	end : genSkew

	for(genvar  p = 0; p < PE; p++) begin : genChain
		logic [SIMD-1:0][ACC_BITS-1:0]  P;	// packed: an unpacked array would become a memory to Yosys
		for(genvar  s = 0; s < SIMD; s++) begin : genSlice
			logic signed [A_BITS:0]  Ar;
			logic signed [W_BITS:0]  Br;
			logic signed [PROD_BITS-1:0]  M;
			always_ff @(posedge clk) begin
				Ar <= A_SIGNED? $signed({ASk[s][A_BITS-1], ASk[s]}) : $signed({1'b0, ASk[s]});
				Br <= W_SIGNED? $signed({WSk[p][s][W_BITS-1], WSk[p][s]}) : $signed({1'b0, WSk[p][s]});
				M <= Ar * Br;
			end
			if(s == 0) begin : genHead
				always_ff @(posedge clk)  P[s] <= acc_t'(M);
			end : genHead
			else begin : genTail
				always_ff @(posedge clk)  P[s] <= acc_t'(P[s-1]) + acc_t'(M);
			end : genTail
		end : genSlice
		assign	dot[p] = P[SIMD-1];
	end : genChain

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

endmodule : dot_chain
