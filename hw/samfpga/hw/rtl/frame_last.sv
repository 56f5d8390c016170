// Frame last: marks the last beat of a frame on a stream of whole IN_B-byte beats that carries no tlast (the engine's
// unit side towards its writer), so that a byte gearbox after it sends the frame's last bytes as a partial beat.
//
// `go` (a one-cycle pulse) loads the frame's byte count (`bytes` >= 1: the writer's, known once its walk has sized the
// frame); until then no beat passes (s_tready low). Each beat passed counts IN_B bytes off; the beat on which at most
// IN_B bytes were left carries m_tlast, and the beats after it wait for the next `go`. The bytes of the last beat past
// the frame pass too (tkeep is whole: the consumer takes the frame's bytes by its own count).

module frame_last #(
	int unsigned  IN_B = 8,	// bytes per beat
	int unsigned  BYTES_BITS = 40	// width of the frame's byte count
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  go,
	input	logic [BYTES_BITS-1:0]  bytes,

	input	logic [8*IN_B-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [8*IN_B-1:0]  m_tdata,
	output	logic  m_tlast,
	output	logic  m_tvalid,
	input	logic  m_tready
);
	logic [BYTES_BITS-1:0]  Left = 0;	// bytes of the frame not yet passed (0: no frame)

	assign	m_tdata = s_tdata;
	assign	m_tvalid = s_tvalid && Left != 0;
	assign	s_tready = m_tready && Left != 0;
	assign	m_tlast = Left <= BYTES_BITS'(IN_B);

	always_ff @(posedge clk) begin
		if(rst)  Left <= 0;
		else if(go)  Left <= bytes;
		else if(m_tvalid && m_tready)  Left <= m_tlast? '0 : Left - BYTES_BITS'(IN_B);
	end
endmodule : frame_last
