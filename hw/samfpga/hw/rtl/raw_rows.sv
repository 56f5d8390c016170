// The GEMM unit's raw sums (token_batch_mvu.sv RAW_OUT, a raw frame) as rows for the softmax (int_softmax.sv).
// A QK^T pass sends, per query, NF folds of PE sums, each fold as K beats of PE*OB8 bits (OB8 = 8: the unit's
// output byte; the fold's PE sums as K*OB8-bit fields, concatenated, cut into K beats: token_batch_mvu.pack_outputs).
// A row is the NF*PE sums of one query; only its first N are keys (the rest pad the keys to whole folds) and go
// out, L per beat, each sum's low OUT_BITS bits (exact for sums that fit, as the unit's RAW_BITS).
// Two row buffers: one fills (NF*K beats) while the other empties (N/L beats), so a row takes max(NF*K, N/L)
// cycles. The positions of a beat's L sums in the row are constants: the read is an (N/L):1 select per lane.
module raw_rows #(
	int unsigned  PE = 4,          // sums per fold (the unit's PE)
	int unsigned  K = 3,           // beats per fold (the unit's raw_words)
	int unsigned  NF = 2,          // folds per row
	int unsigned  N = 6,           // keys per row (<= NF*PE), a multiple of L
	int unsigned  L = 2,           // sums per output beat (the softmax's lanes)
	int unsigned  OUT_BITS = 21,   // bits of a sum out (<= 8*K)

	localparam int unsigned  VB = 8*K,                       // bits of a sum in a fold
	localparam int unsigned  IW = PE*8,                      // input beat
	localparam int unsigned  RW = NF*PE*VB,                  // a row
	localparam int unsigned  OW = (L*OUT_BITS + 7)/8 * 8,    // output beat (whole bytes)
	localparam int unsigned  WB = NF*K > 1 ? $clog2(NF*K) : 1,
	localparam int unsigned  OBB = N/L > 1 ? $clog2(N/L) : 1
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [IW-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [OW-1:0]  m_tdata,
	output	logic  m_tvalid,
	input	logic  m_tready
);

	initial begin
		if(N > NF*PE)  $error("raw_rows: N = %0d keys exceed the row's NF*PE = %0d sums", N, NF*PE);
		if(N % L != 0)  $error("raw_rows: N = %0d is not a multiple of L = %0d", N, L);
		if(OUT_BITS > VB)  $error("raw_rows: OUT_BITS = %0d exceeds the %0d bits of a raw sum", OUT_BITS, VB);
	end

	// two plain registers, not an array: a memory would be inferred and copied per read position
	logic [RW-1:0]  Row0;
	logic [RW-1:0]  Row1;
	logic [1:0]  Full = '0;
	logic  WSel = 0;
	logic  RSel = 0;
	logic [WB-1:0]  WBeat = '0;
	logic [OBB-1:0]  RBeat = '0;

	assign	s_tready = !Full[WSel];
	assign	m_tvalid = Full[RSel];

	// output beat RBeat of the row being emptied: sums RBeat*L .. RBeat*L + L-1
	uwire [RW-1:0]  rd = RSel ? Row1 : Row0;
	always_comb begin
		m_tdata = '0;
		for(int unsigned  b = 0; b < N/L; b++) begin
			if(RBeat == OBB'(b)) begin
				for(int unsigned  l = 0; l < L; l++)  m_tdata[l*OUT_BITS +: OUT_BITS] = rd[(b*L + l)*VB +: OUT_BITS];
			end
		end
	end

	always_ff @(posedge clk) begin
		if(rst) begin
			Full <= '0;
			WSel <= 0;
			RSel <= 0;
			WBeat <= '0;
			RBeat <= '0;
		end
		else begin
			if(s_tvalid && s_tready) begin
				if(WSel)  Row1[WBeat*IW +: IW] <= s_tdata;
				else  Row0[WBeat*IW +: IW] <= s_tdata;
				if(WBeat == WB'(NF*K-1)) begin
					WBeat <= '0;
					Full[WSel] <= 1;
					WSel <= !WSel;
				end
				else  WBeat <= WBeat + 1;
			end
			if(m_tvalid && m_tready) begin
				if(RBeat == OBB'(N/L-1)) begin
					RBeat <= '0;
					Full[RSel] <= 0;
					RSel <= !RSel;
				end
				else  RBeat <= RBeat + 1;
			end
		end
	end

endmodule : raw_rows
