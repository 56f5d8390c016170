// Splits each vector of one AXI-Stream along its channels onto N output streams (FINN's StreamingSplit: the
// q/k/v split of attention), SIMD elements per beat. FINN+ offers StreamingSplit only as HLS.
// Of every vector of BEATS[0] + ... + BEATS[N-1] input beats, the first BEATS[0] go to output 0, the next
// BEATS[1] to output 1, and so on. Each output has its own register, so an output stalls the input only while
// the beat routed to it finds its register still full; one beat per cycle otherwise. tvalid never depends on
// tready.
module stream_split #(
	int unsigned  N = 3,
	int unsigned  WIDTH = 8,	// padded stream width in bits
	parameter logic [N-1:0][31:0]  BEATS = '{default: 1}
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

	function automatic int unsigned max_beats();
		automatic int unsigned  m = 1;
		for(int unsigned  i = 0; i < N; i++)  if(BEATS[i] > m)  m = BEATS[i];
		return  m;
	endfunction : max_beats
	localparam int unsigned  SEL_BITS = N > 1? $clog2(N) : 1;
	localparam int unsigned  CNT_BITS = max_beats() > 1? $clog2(max_beats()) : 1;

	// current output and the beat count within it
	logic [SEL_BITS-1:0]  Sel = 0;
	logic [CNT_BITS-1:0]  Cnt = 0;

	logic [N-1:0]  OVld = '0;
	logic [N-1:0][WIDTH-1:0]  OData = '0;

	assign	s_tready = !OVld[Sel] || m_tready[Sel];
	uwire  take = s_tvalid && s_tready;

	always_ff @(posedge clk) begin
		if(rst) begin
			Sel <= 0;
			Cnt <= 0;
			OVld <= '0;
			OData <= '0;
		end
		else begin
			for(int unsigned  i = 0; i < N; i++) begin
				if(take && Sel == i) begin
					OVld[i] <= 1;
					OData[i] <= s_tdata;
				end
				else if(m_tready[i])  OVld[i] <= 0;
			end
			if(take) begin
				if(Cnt == CNT_BITS'(BEATS[Sel] - 1)) begin
					Cnt <= 0;
					Sel <= (Sel == SEL_BITS'(N-1))? 0 : Sel + 1;
				end
				else  Cnt <= Cnt + 1;
			end
		end
	end

	assign	m_tdata = OData;
	assign	m_tvalid = OVld;

endmodule : stream_split
