// One DSP48E2 slice as dot_pack.sv uses it (UG579): pre-adder AD = w_hi * 2^18 + w_lo (registered), B = the
// activation (registered), M = AD * B (registered), P = PCIN + M (registered). Operands arrive already extended
// (9-bit weights, 18-bit activation: signed or zero-extended by the caller), so the module has no parameters and a
// resource count can take each instance as one slice (bench/token_batch_synth.py, Yosys --blackboxed-module);
// Vivado infers the slice from it.
module mac_slice (
	input	logic  clk,
	input	logic signed [8:0]  w_hi,
	input	logic signed [8:0]  w_lo,
	input	logic signed [17:0]  a,
	input	logic signed [47:0]  pcin,
	output	logic signed [47:0]  p
);
	logic signed [26:0]  AD;
	logic signed [17:0]  B;
	logic signed [44:0]  M;
	always_ff @(posedge clk) begin
		AD <= (27'(w_hi) <<< 18) + 27'(w_lo);
		B <= a;
		M <= AD * B;
		p <= pcin + 48'(M);
	end
endmodule : mac_slice
