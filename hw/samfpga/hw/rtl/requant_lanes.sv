// Requantiser lanes: the engine's per-channel requantisation outside the GEMM unit (after the LayerNorm, the
// depthwise unit and the residual adder; samfpga.hw.sim.lane_requant.LaneRequant), LANES values per beat:
//   y = clip((x * S[c] + B[c]) >>> T[c])  to [-2^(OUT_BITS-1), 2^(OUT_BITS-1) - 1], or [0, 2^OUT_BITS - 1] (cfg_unsigned)
// A token is GROUPS beats of LANES channels (its channels padded to whole beats), so channel c = g * LANES + k is
// always on lane k: each lane keeps only its own channels' parameters (DEPTH entries, LUTRAM), no lane reads
// another's.
//
// A frame: a `start` pulse (while !busy) samples cfg_groups (beats per token), cfg_tokens and cfg_unsigned; the
// lanes then take GROUPS * LANES parameter beats on p_axis (channel 0 first; {T, B, S} with S in the low bits, S and
// B two's complement, T unsigned), then TOKENS * GROUPS data beats on s_axis (lane k at [k*IN_BITS +: IN_BITS],
// two's complement) and send as many on m_axis (lane k at [k*OUT_BITS +: OUT_BITS]), tlast on the frame's last.
// Two pipeline stages (the product, then bias, shift and clip), stalled together by m_axis_tready.
// err: bad configuration (groups 0 or above DEPTH, tokens 0): the frame is dropped, nothing is taken (sticky until
// the next start).

module requant_lanes #(
	int unsigned  LANES = 4,
	int unsigned  IN_BITS = 16,	// signed inputs
	int unsigned  OUT_BITS = 8,
	int unsigned  S_BITS = 18,	// scale (signed)
	int unsigned  B_BITS = 40,	// bias (signed)
	int unsigned  T_BITS = 6,	// shift (unsigned)
	int unsigned  DEPTH = 16,	// parameter entries per lane: channels up to LANES * DEPTH
	int unsigned  TOK_BITS = 16,

	localparam int unsigned  PW = S_BITS + B_BITS + T_BITS,
	localparam int unsigned  P_STREAM = (PW + 7) / 8 * 8,
	localparam int unsigned  I_STREAM = (LANES * IN_BITS + 7) / 8 * 8,
	localparam int unsigned  O_STREAM = (LANES * OUT_BITS + 7) / 8 * 8,
	localparam int unsigned  GB = $clog2(DEPTH + 1),
	localparam int unsigned  AB = DEPTH > 1? $clog2(DEPTH) : 1,
	localparam int unsigned  LB = LANES > 1? $clog2(LANES) : 1
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [GB-1:0]  cfg_groups,
	input	logic [TOK_BITS-1:0]  cfg_tokens,
	input	logic  cfg_unsigned,
	output	logic  busy,
	output	logic  err,

	input	logic [P_STREAM-1:0]  p_axis_tdata,
	input	logic  p_axis_tvalid,
	output	logic  p_axis_tready,

	input	logic [I_STREAM-1:0]  s_axis_tdata,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [O_STREAM-1:0]  m_axis_tdata,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  MB = IN_BITS + S_BITS;	// x * S
	localparam int unsigned  SB = (MB > B_BITS? MB : B_BITS) + 1;	// x * S + B

	typedef enum logic [1:0] { IDLE, LOAD, RUN } state_t;
	state_t  State = IDLE;
	logic [GB-1:0]  Groups;
	logic [TOK_BITS-1:0]  Tokens;
	logic  Unsigned;
	logic  Err = 0;

	// parameters, per lane its own channels: {T, B, S} per entry
	logic [LB-1:0]  PLane;	// LOAD: lane and entry of the next parameter beat
	logic [AB-1:0]  PEntry;
	logic [AB-1:0]  G;	// RUN: group of the next input beat
	uwire [PW-1:0]  prm[LANES];	// each lane's parameters of group G

	// RUN: input side
	logic [TOK_BITS-1:0]  Tok;	// its token
	logic  InLeft;	// input beats remain

	// pipeline
	logic  V1 = 0, V2 = 0, L1, L2;
	logic signed [MB-1:0]  P1[LANES];
	logic signed [B_BITS-1:0]  B1[LANES];
	logic [T_BITS-1:0]  T1[LANES];
	logic [OUT_BITS-1:0]  Y2[LANES];
	uwire  en = !V2 || m_axis_tready;

	assign	p_axis_tready = State == LOAD;
	uwire  p_take = p_axis_tvalid && p_axis_tready;
	assign	s_axis_tready = State == RUN && InLeft && en;
	uwire  s_take = s_axis_tvalid && s_axis_tready;
	uwire  last_in = G + 1 == Groups && Tok + 1 == Tokens;

	assign	busy = State != IDLE || V1 || V2;
	assign	err = Err;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			Err <= 0;
		end
		else unique case(State)
		IDLE: if(start && !busy) begin
			Groups <= cfg_groups;
			Tokens <= cfg_tokens;
			Unsigned <= cfg_unsigned;
			PLane <= 0;
			PEntry <= 0;
			Err <= 0;
			if(cfg_groups == 0 || cfg_groups > DEPTH || cfg_tokens == 0)  Err <= 1;
			else  State <= LOAD;
		end
		LOAD: if(p_take) begin
			if(PLane == LB'(LANES - 1)) begin
				PLane <= 0;
				PEntry <= PEntry + 1;
				if(PEntry + 1 == Groups) begin
					State <= RUN;
					G <= 0;
					Tok <= 0;
					InLeft <= 1;
				end
			end
			else  PLane <= PLane + 1;
		end
		RUN: begin
			if(s_take) begin
				G <= G + 1 == Groups? 0 : G + 1;
				if(G + 1 == Groups)  Tok <= Tok + 1;
				if(last_in)  InLeft <= 0;
			end
			if(!InLeft && !V1 && !V2)  State <= IDLE;
		end
		default: ;
		endcase
	end

	// one memory per lane (LUTRAM: one write port, read asynchronously at G)
	for(genvar  k = 0; k < LANES; k++) begin : genLane
		(* ram_style = "distributed" *) logic [PW-1:0]  Pm[DEPTH];
		always_ff @(posedge clk) begin
			if(p_take && PLane == LB'(k))  Pm[PEntry] <= p_axis_tdata[PW-1:0];
		end
		assign	prm[k] = Pm[G];
	end

	// stage 1: the products and the lane's parameters of the beat's group; stage 2: bias, shift, clip
	logic signed [SB-1:0]  lo, hi;
	always_comb begin
		lo = Unsigned? '0 : -(SB'(1) <<< (OUT_BITS - 1));
		hi = Unsigned? (SB'(1) <<< OUT_BITS) - 1 : (SB'(1) <<< (OUT_BITS - 1)) - 1;
	end
	always_ff @(posedge clk) begin
		if(rst) begin
			V1 <= 0;
			V2 <= 0;
		end
		else if(en) begin
			V1 <= s_take;
			L1 <= last_in;
			V2 <= V1;
			L2 <= L1;
			for(int unsigned  k = 0; k < LANES; k++) begin
				P1[k] <= MB'($signed(s_axis_tdata[k*IN_BITS +: IN_BITS])) * MB'($signed(prm[k][0 +: S_BITS]));
				B1[k] <= prm[k][S_BITS +: B_BITS];
				T1[k] <= prm[k][S_BITS + B_BITS +: T_BITS];
			end
			for(int unsigned  k = 0; k < LANES; k++) begin
				automatic logic signed [SB-1:0]  v = (SB'(P1[k]) + SB'(B1[k])) >>> T1[k];
				Y2[k] <= OUT_BITS'(v < lo? lo : v > hi? hi : v);
			end
		end
	end

	always_comb begin
		m_axis_tdata = '0;
		for(int unsigned  k = 0; k < LANES; k++)  m_axis_tdata[k*OUT_BITS +: OUT_BITS] = Y2[k];
	end
	assign	m_axis_tvalid = V2;
	assign	m_axis_tlast = L2;
endmodule
