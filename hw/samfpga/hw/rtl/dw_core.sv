// The engine's depthwise unit at run-time shape: a 3 x 3 depthwise convolution (padding 1, stride 1 or 2) over a
// map of H x W pixels of cfg_cb * PE channels that arrives in `tiles` column strips, then its requantiser lanes:
// strip_pad.sv (the padding; halo 1) -> dw_window.sv (9 taps per beat) -> dw_mac.sv (PE channels x 9 taps per
// cycle, weights from w_axis) -> requant_lanes.sv (LANES = PE, parameters from p_axis).
//
// A frame: a `start` pulse (while !busy) samples the configuration: cfg_h, cfg_w (the map), cfg_tiles (strips of
// S = W / tiles columns, each read with a one-column halo on its interior sides, as strip_reader.sv reads them),
// cfg_cb (beats of PE channels per pixel), cfg_stride2, cfg_in_unsigned (the activations' sign), cfg_unsigned (the
// lanes' clip), cfg_open_l / cfg_open_r (with tiles = 1: the map is one strip of a wider map, sent with its halo
// column on that side, which gets no padding: a host that launches a layer strip by strip; the strip's columns
// less the halo then count as S). The unit finds S (repeated addition), each strip's output geometry and the tokens (tiles * OH * OW),
// starts the window, and once it accepts the shape starts the padding, the multiply-accumulate and the lanes. Then
// p_axis takes the weights (dw_mac.sv's beats at WIN = the parameter stream's width: 9 * cfg_cb taps of
// ceil(PE * W_BITS / WIN) beats) followed by the lanes' cfg_cb * PE parameter beats (requant_lanes.sv's), s_axis the
// strips (tlast on each strip's last beat), and m_axis sends per strip, output row, column, the pixel's cfg_cb beats
// of PE outputs (tlast on the frame's last).
// err[0]: bad configuration (h, w, tiles or cb zero, cb above CB_MAX, W not a multiple of tiles, strips of one
// column, an odd strip at stride 2, tokens beyond TOK_BITS, a strip too wide for the window's banks): nothing is
// taken. err[1]: the input's
// tlast off a strip's end. err[2]: the lanes refused. Sticky until the next start.
//
// cfg_window (sampled with the start): the window alone, for a 3 x 3 convolution on the engine's GEMM unit. The
// padded strips' windows leave on x_axis (per strip, output row, column, beat g < cfg_cb: the 9 taps of that beat's
// PE channels, tap ky * 3 + kx in word ky * 3 + kx), the multiply-accumulate and the lanes stay idle and p_axis takes
// nothing; m_axis sends nothing.

module dw_core #(
	int unsigned  PE = 16,
	int unsigned  W_MAX = 34,	// columns of a padded strip (S + 2) at CB_MAX beats per pixel
	int unsigned  CB_MAX = 4,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 21,
	int unsigned  OUT_BITS = 8,
	int unsigned  S_BITS = 18,
	int unsigned  B_BITS = 40,
	int unsigned  T_BITS = 6,
	int unsigned  DIM_BITS = 12,
	int unsigned  TOK_BITS = 16,
	parameter  RAM_STYLE = "auto",	// the window's banks (dw_window.sv)

	localparam int unsigned  BW = PE * 8,
	localparam int unsigned  PW = S_BITS + B_BITS + T_BITS,
	localparam int unsigned  P_STREAM = (PW + 7) / 8 * 8,
	localparam int unsigned  A_STREAM = (PE * ACC_BITS + 7) / 8 * 8,
	localparam int unsigned  O_STREAM = (PE * OUT_BITS + 7) / 8 * 8,
	localparam int unsigned  GB = $clog2(CB_MAX + 1)
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	input	logic [DIM_BITS-1:0]  cfg_tiles,
	input	logic [DIM_BITS-1:0]  cfg_cb,
	input	logic  cfg_stride2,
	input	logic  cfg_in_unsigned,
	input	logic  cfg_unsigned,
	input	logic  cfg_open_l,
	input	logic  cfg_open_r,
	input	logic  cfg_window,
	output	logic  busy,
	output	logic [2:0]  err,

	input	logic [P_STREAM-1:0]  p_axis_tdata,
	input	logic  p_axis_tvalid,
	output	logic  p_axis_tready,

	input	logic [BW-1:0]  s_axis_tdata,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [9*BW-1:0]  x_axis_tdata,	// cfg_window: the windows
	output	logic  x_axis_tlast,
	output	logic  x_axis_tvalid,
	input	logic  x_axis_tready,

	output	logic [O_STREAM-1:0]  m_axis_tdata,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  DB = DIM_BITS;

	typedef enum logic [2:0] { IDLE, DIV, GEO, MUL, WSTART, WCHECK, RUN } state_t;
	state_t  State = IDLE;
	logic [DB-1:0]  H, W, Tiles, CB;
	logic  S2, InUns, OutUns, OpenL, OpenR, WinOnly;
	logic [DB:0]  SAcc;
	logic [DB-1:0]  S, OH, OW;
	logic [3*DB-1:0]  Tokens;
	logic  ErrCfg = 0;

	uwire  pad_busy, win_busy, lanes_busy, lanes_err;
	uwire [1:0]  pad_err, win_err;
	assign	busy = State != IDLE;
	assign	err = {lanes_err, pad_err[0] || win_err[0], ErrCfg || pad_err[1]};

	// the padded strip: S + 2 columns (its halo or padding on each side; an open side's halo is in S), H + 2 rows
	uwire [DB-1:0]  wp = S + 2 - DB'(OpenL) - DB'(OpenR);
	uwire [DB-1:0]  hp = H + 2;

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
		end
		else unique case(State)
		IDLE: if(start) begin
			H <= cfg_h;
			W <= cfg_w;
			Tiles <= cfg_tiles;
			CB <= cfg_cb;
			S2 <= cfg_stride2;
			InUns <= cfg_in_unsigned;
			OutUns <= cfg_unsigned;
			OpenL <= cfg_open_l;
			OpenR <= cfg_open_r;
			WinOnly <= cfg_window;
			S <= 0;
			SAcc <= 0;
			ErrCfg <= 0;
			if(cfg_h == 0 || cfg_w == 0 || cfg_tiles == 0 || cfg_cb == 0 || cfg_cb > CB_MAX
					|| ((cfg_open_l || cfg_open_r) && cfg_tiles != 1) || cfg_w <= DB'(cfg_open_l) + DB'(cfg_open_r))
				ErrCfg <= 1;
			else  State <= DIV;
		end
		DIV: begin	// S = W / Tiles
			if(SAcc == (DB+1)'(W))  State <= GEO;
			else if(SAcc > (DB+1)'(W)) begin
				ErrCfg <= 1;
				State <= IDLE;
			end
			else begin
				SAcc <= SAcc + (DB+1)'(Tiles);
				S <= S + 1;
			end
		end
		GEO: begin
			OH <= S2? DB'((hp - 3) >> 1) + 1 : hp - 2;
			OW <= S2? DB'((wp - 3) >> 1) + 1 : wp - 2;
			// strips of odd width at stride 2 would start their windows off the map's even columns (a strip sent on
			// its own: its columns less its halo); a strip of one column has both halos at the map's edges
			if((S2 && (Tiles > 1 || OpenL || OpenR) && (S[0] ^ OpenL ^ OpenR)) || (Tiles > 1 && S < 2)) begin
				ErrCfg <= 1;
				State <= IDLE;
			end
			else  State <= MUL;
		end
		MUL: begin
			Tokens <= (3*DB)'(Tiles) * (3*DB)'(OH) * (3*DB)'(OW);
			State <= WSTART;
		end
		WSTART: begin
			if(Tokens >= (3*DB)'(1) << TOK_BITS) begin
				ErrCfg <= 1;
				State <= IDLE;
			end
			else  State <= WCHECK;
		end
		WCHECK: begin	// the window sampled its shape in WSTART's last cycle
			if(win_err[1]) begin
				ErrCfg <= 1;
				State <= IDLE;
			end
			else  State <= RUN;
		end
		RUN: if(!pad_busy && !win_busy && !lanes_busy)  State <= IDLE;
		default: ;
		endcase
	end

	// the window starts as WSTART ends (when the tokens fit), the rest as WCHECK ends (when the window took it)
	uwire  win_start = State == WSTART && Tokens < (3*DB)'(1) << TOK_BITS;
	uwire  go = State == WCHECK && !win_err[1];
	uwire  mac_go = go && !WinOnly;

	uwire [BW-1:0]  p_tdata;
	uwire  p_tlast, p_tvalid, p_tready;
	strip_pad #(.BW(BW), .DIM_BITS(DIM_BITS)) pad (
		.clk, .rst,
		.start(go), .cfg_h(H), .cfg_w(W), .cfg_tiles(Tiles), .cfg_halo(DB'(1)), .cfg_cb(CB), .cfg_pad(DB'(1)),
		.cfg_open_l(OpenL), .cfg_open_r(OpenR),
		.busy(pad_busy), .err(pad_err),
		.s_axis_tdata, .s_axis_tlast, .s_axis_tvalid, .s_axis_tready,
		.m_axis_tdata(p_tdata), .m_axis_tlast(p_tlast), .m_axis_tvalid(p_tvalid), .m_axis_tready(p_tready)
	);

	uwire [9*BW-1:0]  x_tdata;
	uwire  x_tlast, x_tvalid, x_tready, mac_x_ready;
	dw_window #(.BW(BW), .W_MAX(W_MAX), .CB_MAX(CB_MAX), .DIM_BITS(DIM_BITS), .RAM_STYLE(RAM_STYLE)) window (
		.clk, .rst,
		.start(win_start), .cfg_h(hp), .cfg_w(wp), .cfg_cb(CB), .cfg_strips(Tiles), .cfg_stride2(S2),
		.busy(win_busy), .err(win_err),
		.s_axis_tdata(p_tdata), .s_axis_tlast(p_tlast), .s_axis_tvalid(p_tvalid), .s_axis_tready(p_tready),
		.m_axis_tdata(x_tdata), .m_axis_tlast(x_tlast), .m_axis_tvalid(x_tvalid), .m_axis_tready(x_tready)
	);
	assign	x_axis_tdata = x_tdata;
	assign	x_axis_tlast = x_tlast;
	assign	x_axis_tvalid = WinOnly && x_tvalid;
	assign	x_tready = WinOnly? x_axis_tready : mac_x_ready;

	uwire [A_STREAM-1:0]  a_tdata;
	uwire  a_tvalid, a_tready;
	// the parameter stream: the weights while the multiply-accumulate loads them, then the lanes' parameters
	uwire  mac_loading, mac_w_ready, lanes_p_ready;
	assign	p_axis_tready = !WinOnly && (mac_loading? mac_w_ready : lanes_p_ready);
	dw_mac #(
		.PE(PE), .W_BITS(W_BITS), .WIN(P_STREAM), .ACC_BITS(ACC_BITS), .CB_MAX(CB_MAX), .DIM_BITS(DIM_BITS)
	) mac (
		.clk, .rst,
		.start(mac_go), .cfg_cb(CB), .cfg_in_unsigned(InUns), .loading(mac_loading),
		.w_axis_tdata(p_axis_tdata), .w_axis_tvalid(mac_loading && p_axis_tvalid), .w_axis_tready(mac_w_ready),
		.s_axis_tdata(x_tdata), .s_axis_tvalid(!WinOnly && x_tvalid), .s_axis_tready(mac_x_ready),
		.m_axis_tdata(a_tdata), .m_axis_tvalid(a_tvalid), .m_axis_tready(a_tready)
	);

	requant_lanes #(
		.LANES(PE), .IN_BITS(ACC_BITS), .OUT_BITS(OUT_BITS), .S_BITS(S_BITS), .B_BITS(B_BITS), .T_BITS(T_BITS),
		.DEPTH(CB_MAX), .TOK_BITS(TOK_BITS)
	) lanes (
		.clk, .rst,
		.start(mac_go), .cfg_groups(GB'(CB)), .cfg_tokens(TOK_BITS'(Tokens)), .cfg_unsigned(OutUns),
		.busy(lanes_busy), .err(lanes_err),
		.p_axis_tdata, .p_axis_tvalid(!mac_loading && p_axis_tvalid), .p_axis_tready(lanes_p_ready),
		.s_axis_tdata(a_tdata), .s_axis_tvalid(a_tvalid), .s_axis_tready(a_tready),
		.m_axis_tdata, .m_axis_tlast, .m_axis_tvalid, .m_axis_tready
	);

endmodule : dw_core
