// Duplicates one AXI-Stream onto N output streams (the fork in front of a residual branch).
// FINN+ offers DuplicateStreams only as HLS. Each output has its own register, so one slow consumer stalls
// the input only once its own copy is still pending; a beat is accepted when every output register is free or
// being drained in this cycle. tvalid never depends on tready.
module duplicate_streams #(
	int unsigned  N = 2,
	int unsigned  WIDTH = 8	// padded stream width in bits
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [WIDTH-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [N-1:0][WIDTH-1:0]  m_tdata,
	output	logic [N-1:0]  m_tvalid,
	input	logic [N-1:0]  m_tready
);

	logic [N-1:0]  OVld = '0;
	logic [WIDTH-1:0]  OData = '0;

	uwire  take = s_tvalid && s_tready;
	assign	s_tready = &(~OVld | m_tready);

	always_ff @(posedge clk) begin
		if(rst) begin
			OVld  <= '0;
			OData <= '0;
		end
		else begin
			if(take) begin
				OVld  <= '1;
				OData <= s_tdata;
			end
			else  OVld <= OVld & ~m_tready;
		end
	end

	for(genvar  i = 0; i < N; i++) begin : genOut
		assign	m_tdata[i] = OData;
	end : genOut
	assign	m_tvalid = OVld;

endmodule : duplicate_streams
