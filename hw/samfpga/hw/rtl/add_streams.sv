// Integer element-wise addition of two AXI-Streams (residual add), PE lanes per beat.
// FINN+ offers this only as HLS (or DSP58-based RTL on Versal) for Zynq UltraScale+; this is plain fabric logic.
// Lane i of a beat occupies bits [i*BITS +: BITS] (FINN's stream packing, element 0 in the LSBs).
// One output register with full throughput: a beat is taken when both inputs are valid and the register is free
// or being drained. tvalid never depends on tready (AXI-Stream rule); tready of one input depends on the other's
// tvalid, which AXI allows.
module add_streams #(
	int unsigned  PE = 1,
	int unsigned  A_BITS = 8,
	int unsigned  B_BITS = 8,
	int unsigned  O_BITS = 9,
	bit  A_SIGNED = 1,
	bit  B_SIGNED = 1,

	localparam int unsigned  A_STREAM = (PE*A_BITS + 7)/8 * 8,
	localparam int unsigned  B_STREAM = (PE*B_BITS + 7)/8 * 8,
	localparam int unsigned  O_STREAM = (PE*O_BITS + 7)/8 * 8
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [A_STREAM-1:0]  a_tdata,
	input	logic  a_tvalid,
	output	logic  a_tready,

	input	logic [B_STREAM-1:0]  b_tdata,
	input	logic  b_tvalid,
	output	logic  b_tready,

	output	logic [O_STREAM-1:0]  o_tdata,
	output	logic  o_tvalid,
	input	logic  o_tready
);

	typedef logic [PE-1:0][O_BITS-1:0]  sum_t;

	logic  OVld = 0;
	sum_t  OSum = '0;

	uwire  free = !OVld || o_tready;
	uwire  take = a_tvalid && b_tvalid && free;
	assign	a_tready = b_tvalid && free;
	assign	b_tready = a_tvalid && free;

	// Operand extension to the output width honours each input's signedness.
	uwire sum_t  sum;
	for(genvar  pe = 0; pe < PE; pe++) begin : genLane
		uwire [A_BITS-1:0]  a = a_tdata[pe*A_BITS +: A_BITS];
		uwire [B_BITS-1:0]  b = b_tdata[pe*B_BITS +: B_BITS];
		uwire [O_BITS-1:0]  ax = A_SIGNED? O_BITS'($signed(a)) : O_BITS'(a);
		uwire [O_BITS-1:0]  bx = B_SIGNED? O_BITS'($signed(b)) : O_BITS'(b);
		assign	sum[pe] = ax + bx;
	end : genLane

	always_ff @(posedge clk) begin
		if(rst) begin
			OVld <= 0;
			OSum <= '0;
		end
		else begin
			if(take) begin
				OVld <= 1;
				OSum <= sum;
			end
			else if(o_tready)  OVld <= 0;
		end
	end

	assign	o_tvalid = OVld;
	assign	o_tdata = O_STREAM'(OSum);

endmodule : add_streams
