// The depthwise unit's multiply-accumulate at run-time weights: PE channels x 9 taps per cycle.
//
// A `start` pulse samples cfg_cb (channel groups of PE) and cfg_in_unsigned (the activations' sign); the unit then
// takes the weights on w_axis, WIN bits per beat (the engine's parameter stream: the weights travel with the lanes'
// parameters), into one memory per tap: for each group g and tap k (g outer), the PE weights of channels g * PE ..
// g * PE + PE - 1 (channel g * PE + p at [p*W_BITS +: W_BITS], two's complement) in WPB = ceil(PE * W_BITS / WIN)
// beats, low bits first. From then on it takes window beats on s_axis (dw_window.sv's: word k = tap k, PE
// activations of 8 bits, channel p at [p*8 +: 8]) for groups 0, 1, .., cfg_cb - 1, 0, ..; per beat it sends PE sums
// sum_k a[k][p] * w[g][k][p], exact in ACC_BITS two's complement (ACC_BITS = 9 + W_BITS + 4 holds any sum of nine
// products). It runs until the next start, so whoever starts it counts the frame (the lanes behind it do).
// Weights of up to CB_MAX groups. Two stages: the beat and its group's weights registered (the memories read), then
// the sums.

module dw_mac #(
	int unsigned  PE = 16,
	int unsigned  W_BITS = 8,
	int unsigned  WIN = 64,	// weight stream width (bits, a multiple of 8)
	int unsigned  ACC_BITS = 21,
	int unsigned  CB_MAX = 4,
	int unsigned  DIM_BITS = 12,

	localparam int unsigned  A_BITS = 8,
	localparam int unsigned  AW = PE * A_BITS,	// one tap's word
	localparam int unsigned  WW = PE * W_BITS,
	localparam int unsigned  WPB = (WW + WIN - 1) / WIN,	// weight beats per tap
	localparam int unsigned  OUT_STREAM = (PE * ACC_BITS + 7) / 8 * 8,
	localparam int unsigned  GB = CB_MAX > 1? $clog2(CB_MAX) : 1
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [DIM_BITS-1:0]  cfg_cb,
	input	logic  cfg_in_unsigned,
	output	logic  loading,	// taking weights

	input	logic [WIN-1:0]  w_axis_tdata,
	input	logic  w_axis_tvalid,
	output	logic  w_axis_tready,

	input	logic [9*AW-1:0]  s_axis_tdata,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [OUT_STREAM-1:0]  m_axis_tdata,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	typedef enum logic [1:0] { IDLE, LOAD, RUN } state_t;
	state_t  State = IDLE;
	logic [GB-1:0]  CB1;	// cfg_cb - 1
	logic  Uns;
	assign	loading = State == LOAD;

	// ---- weights: one memory per tap, a word of PE weights per group, assembled from WPB beats
	logic [GB-1:0]  LG;	// LOAD: group, tap and beat of the next beat
	logic [3:0]  LK;
	logic [$clog2(WPB+1)-1:0]  LB;
	assign	w_axis_tready = State == LOAD;
	uwire  w_take = w_axis_tvalid && w_axis_tready;
	uwire  w_word_end = LB == WPB - 1;
	uwire [WPB*WIN-1:0]  w_word;	// the tap's word as its last beat arrives
	if(WPB > 1) begin : genAsm
		logic [(WPB-1)*WIN-1:0]  Asm;
		always_ff @(posedge clk) begin
			if(w_take)  Asm <= {w_axis_tdata, Asm} >> WIN;
		end
		assign	w_word = {w_axis_tdata, Asm};
	end : genAsm
	else begin : genWord
		assign	w_word = w_axis_tdata;
	end : genWord

	// ---- stage 1: the beat and its group's weights; stage 2: the sums
	logic [GB-1:0]  G;	// group of the next beat
	logic  V1 = 0, OVld = 0;
	logic [9*AW-1:0]  X1;
	uwire [WW-1:0]  w1[9];
	uwire  move = V1 && (!OVld || m_axis_tready);
	assign	s_axis_tready = State == RUN && (!V1 || move);
	uwire  take = s_axis_tvalid && s_axis_tready;

	for(genvar  k = 0; k < 9; k++) begin : genTap
		logic [WW-1:0]  Mem[CB_MAX];
		logic [WW-1:0]  Q;
		always_ff @(posedge clk) begin
			if(w_take && w_word_end && LK == k)  Mem[LG] <= w_word[WW-1:0];
			if(take)  Q <= Mem[G];
		end
		assign	w1[k] = Q;
	end : genTap

	// the sums of the beat in stage 1
	logic [PE-1:0][ACC_BITS-1:0]  sums;
	always_comb begin
		for(int unsigned  p = 0; p < PE; p++) begin
			automatic logic signed [ACC_BITS-1:0]  acc = 0;
			for(int unsigned  k = 0; k < 9; k++) begin
				automatic logic [A_BITS-1:0]  a = X1[k*AW + p*A_BITS +: A_BITS];
				automatic logic signed [A_BITS:0]  av = {Uns? 1'b0 : a[A_BITS-1], a};
				automatic logic signed [W_BITS-1:0]  wv = w1[k][p*W_BITS +: W_BITS];
				automatic logic signed [ACC_BITS-1:0]  prod = av * wv;	// both extended to ACC_BITS first
				acc += prod;
			end
			sums[p] = acc;
		end
	end

	logic [OUT_STREAM-1:0]  OData;
	assign	m_axis_tdata = OData;
	assign	m_axis_tvalid = OVld;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			V1 <= 0;
			OVld <= 0;
		end
		else begin
			if(start) begin
				State <= cfg_cb == 0 || cfg_cb > CB_MAX? IDLE : LOAD;
				CB1 <= GB'(cfg_cb - 1);
				Uns <= cfg_in_unsigned;
				{LG, LK, LB, G} <= '0;
				V1 <= 0;
				OVld <= 0;
			end
			else begin
				if(w_take)  LB <= w_word_end? '0 : LB + 1;
				if(w_take && w_word_end) begin
					LK <= LK == 8? '0 : LK + 1;
					if(LK == 8) begin
						LG <= LG + 1;
						if(LG == CB1)  State <= RUN;
					end
				end
				if(take) begin
					X1 <= s_axis_tdata;
					G <= G == CB1? '0 : G + 1;
					V1 <= 1;
				end
				else if(move)  V1 <= 0;
				if(move) begin
					OData <= OUT_STREAM'(sums);
					OVld <= 1;
				end
				else if(m_axis_tready)  OVld <= 0;
			end
		end
	end

endmodule : dw_mac
