// The engine's LayerNorm: int_layernorm.sv at run-time channels (RT_C = 1) followed by its requantiser lanes
// (requant_lanes.sv, LANES = PE): the program's IntLayerNorm + Requant pair (the LayerNorm's gamma / beta and the
// next layer's input quantiser folded into per-channel lanes; samfpga.hw.sim.engine_program, EngineStep.ln /
// ln_rq), for layers of any width up to C channels.
//
// A frame: a `start` pulse (while !busy) samples the configuration: cfg_beats beats of PE channels per token (both
// units: the LayerNorm's C' = cfg_beats * PE, the lanes' groups), cfg_tokens, cfg_unsigned (the lanes' clip),
// cfg_eps and cfg_neg (the LayerNorm's round(C'^2 * eps) and negated channels, channel c in bit c). The lanes then
// take cfg_beats * PE parameter beats on p_axis (requant_lanes.sv's format), and s_axis takes cfg_tokens *
// cfg_beats beats of PE two's complement inputs of IN_BITS (lane k at [k*IN_BITS +: IN_BITS]); m_axis sends as
// many beats of PE outputs of OUT_BITS, tlast on the frame's last. Channel c is on lane c % PE throughout, so each
// lane keeps only its own channels' parameters.
// s_axis is taken only while a frame runs (the lanes are busy), so a refused frame takes nothing. err: bad
// configuration (beats 0 or above C/PE, tokens 0), sticky until the next start, as the lanes report it.

module layernorm_lanes #(
	int unsigned  C = 64,	// the widest layer's channels (a multiple of PE)
	int unsigned  PE = 16,
	int unsigned  IN_BITS = 24,	// signed inputs (8-bit activations sign-extended; the neck's raw sums)
	int unsigned  LN_BITS = 12,	// the LayerNorm's outputs = the lanes' inputs
	int unsigned  T = 10,
	int unsigned  RB = 16,
	int unsigned  SHIFT_BIAS = 16,
	int unsigned  SB = 64,	// the LayerNorm's statistics (C^2 * max|x|^2 + eps, signed)
	parameter  RSQRT_FILE = "",
	int unsigned  OUT_BITS = 8,
	int unsigned  S_BITS = 18,
	int unsigned  B_BITS = 40,
	int unsigned  T_BITS = 6,
	int unsigned  TOK_BITS = 16,

	localparam int unsigned  BEATS = C / PE,
	localparam int unsigned  GB = $clog2(BEATS + 1),
	localparam int unsigned  PW = S_BITS + B_BITS + T_BITS,
	localparam int unsigned  P_STREAM = (PW + 7) / 8 * 8,
	localparam int unsigned  I_STREAM = (PE * IN_BITS + 7) / 8 * 8,
	localparam int unsigned  N_STREAM = (PE * LN_BITS + 7) / 8 * 8,
	localparam int unsigned  O_STREAM = (PE * OUT_BITS + 7) / 8 * 8
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [GB-1:0]  cfg_beats,
	input	logic [TOK_BITS-1:0]  cfg_tokens,
	input	logic  cfg_unsigned,
	input	logic [63:0]  cfg_eps,
	input	logic [C-1:0]  cfg_neg,
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
	if(C % PE != 0)  $error("layernorm_lanes: C = %0d is not a multiple of PE = %0d", C, PE);

	// the LayerNorm's configuration, held for the frame (the lanes sample theirs themselves)
	logic [GB-1:0]  Beats = '0;
	logic [63:0]  Eps = '0;
	logic [C-1:0]  Neg = '0;
	always_ff @(posedge clk) begin
		if(start && !busy) begin
			Beats <= cfg_beats;
			Eps <= cfg_eps;
			Neg <= cfg_neg;
		end
	end

	uwire  ln_ready;
	uwire [N_STREAM-1:0]  n_tdata;
	uwire  n_tvalid;
	uwire  n_tready;
	int_layernorm #(
		.C(C), .PE(PE), .IN_BITS(IN_BITS), .IN_SIGNED(1), .OUT_BITS(LN_BITS), .T(T), .RB(RB),
		.SHIFT_BIAS(SHIFT_BIAS), .SB(SB), .RSQRT_FILE(RSQRT_FILE), .RT_C(1), .PIPELINED(1)
	) ln (
		.clk, .rst,
		.cfg_beats(Beats), .cfg_eps(Eps), .cfg_neg(Neg),
		.i_tdata(s_axis_tdata), .i_tvalid(s_axis_tvalid && busy), .i_tready(ln_ready),
		.o_tdata(n_tdata), .o_tvalid(n_tvalid), .o_tready(n_tready)
	);
	assign	s_axis_tready = ln_ready && busy;

	requant_lanes #(
		.LANES(PE), .IN_BITS(LN_BITS), .OUT_BITS(OUT_BITS), .S_BITS(S_BITS), .B_BITS(B_BITS), .T_BITS(T_BITS),
		.DEPTH(BEATS), .TOK_BITS(TOK_BITS)
	) lanes (
		.clk, .rst,
		.start, .cfg_groups(cfg_beats), .cfg_tokens, .cfg_unsigned, .busy, .err,
		.p_axis_tdata, .p_axis_tvalid, .p_axis_tready,
		.s_axis_tdata(n_tdata), .s_axis_tvalid(n_tvalid), .s_axis_tready(n_tready),
		.m_axis_tdata, .m_axis_tlast, .m_axis_tvalid, .m_axis_tready
	);

endmodule : layernorm_lanes
