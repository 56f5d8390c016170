// Strip padding: inserts a k x k convolution's zero padding into a map that arrives as column strips.
//
// The input is what the strip reader emits for an H x W map cut into `tiles` strips of S = W / tiles columns with
// `halo` columns on each interior side (clipped at the image edges): for each strip s, row y, column x in
// [lo, hi) = [max(0, s*S - halo), min(W, (s+1)*S + halo)), the pixel's CB beats (BW bits each). A strip is one
// AXI-Stream packet (tlast on its last beat).
//
// The output is the same strip cut from the map padded with `pad` zero rows and columns on every side: `pad` zero
// rows above and below, and `pad` zero columns on each side where the strip reaches the image edge (lo = 0 on the
// left, hi = W on the right). Interior sides get none: their neighbours' columns are the halo. A valid (unpadded)
// convolution after this unit therefore computes the padded convolution of the whole map on each strip, whatever
// the strip, which FINN's FMPadding cannot do: its padding is fixed at compile time, the same for every strip.
//
// cfg_open_l / cfg_open_r: the map's left / right edge is not the image's (a strip of a wider map sent on its own,
// its halo column already in the input): no padding columns there.
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy); the unit then passes `tiles` strips
// and goes idle. S = W / tiles is found by repeated addition (W / tiles cycles), and each strip's geometry in one
// cycle before it. Then one output beat per cycle: a zero beat takes no input, a data beat is the input beat
// (s_axis_tready follows m_axis_tready on data beats).
// err[0] (sticky until the next start): an input tlast that is not on the strip's last data beat, or its absence
// there (the stream does not have the configured geometry); err[1]: bad configuration (H, W, CB or tiles zero,
// W not a multiple of tiles): nothing is passed.

module strip_pad #(
	int unsigned  BW = 32,	// bits per stream beat
	int unsigned  DIM_BITS = 16	// width of H, W, tiles, halo, CB, pad
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	input	logic [DIM_BITS-1:0]  cfg_tiles,
	input	logic [DIM_BITS-1:0]  cfg_halo,
	input	logic [DIM_BITS-1:0]  cfg_cb,	// beats per pixel
	input	logic [DIM_BITS-1:0]  cfg_pad,
	input	logic  cfg_open_l,
	input	logic  cfg_open_r,
	output	logic  busy,
	output	logic [1:0]  err,

	input	logic [BW-1:0]  s_axis_tdata,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [BW-1:0]  m_axis_tdata,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  XB = DIM_BITS + 2;	// column arithmetic (X0 + S + halo)
	localparam int unsigned  CW = DIM_BITS + 1;	// columns of a strip

	// rows of a strip in three phases (TOP pad rows, MID the map's rows, BOT pad rows), columns of a row in three
	// (L pad columns, D the strip's data columns, R pad columns); each phase counts down to 0, so that the per-beat
	// tests are comparisons with zero and the strip's geometry is computed once per strip (SETUP)
	typedef enum logic [1:0] { IDLE, DIV, SETUP, RUN } state_t;
	typedef enum logic [1:0] { TOP, MID, BOT } rphase_t;
	typedef enum logic [1:0] { L, D, R } cphase_t;
	state_t  State = IDLE;
	logic [DIM_BITS-1:0]  H, W, Tiles, Halo, CB, Pad;
	logic [DIM_BITS-1:0]  S;
	logic [DIM_BITS:0]  SAcc;	// S * Tiles accumulated while dividing
	logic [DIM_BITS-1:0]  Strip;
	logic [XB-1:0]  X0;	// Strip * S
	logic  PL, PR;	// the strip reaches the left / right image edge (and pad > 0)
	logic  OpenL, OpenR;
	logic [CW-1:0]  DCols;	// the strip's data columns
	rphase_t  RPh;
	cphase_t  CPh;
	logic [DIM_BITS-1:0]  RLeft, BLeft;
	logic [CW-1:0]  CLeft;
	logic  ErrCfg = 0, ErrLast = 0;

	// geometry of the strip starting at X0: data columns [lo, hi)
	uwire [XB-1:0]  lo = X0 > XB'(Halo)? X0 - XB'(Halo) : 0;
	uwire [XB-1:0]  hi_raw = X0 + XB'(S) + XB'(Halo);
	uwire [XB-1:0]  hi = hi_raw > XB'(W)? XB'(W) : hi_raw;
	uwire  pad_on = Pad != 0;
	uwire  pl_w = pad_on && lo == 0 && !OpenL;
	uwire  pr_w = pad_on && hi == XB'(W) && !OpenR;
	uwire [CW-1:0]  dcols_w = CW'(hi - lo);

	uwire  zero = RPh != MID || CPh != D;
	uwire  beat_end = BLeft == 0;
	uwire  row_end = beat_end && CLeft == 0 && (CPh == R || (CPh == D && !PR));
	uwire  strip_end = row_end && RLeft == 0 && (RPh == BOT || (RPh == MID && !pad_on));
	uwire  last_data = beat_end && CLeft == 0 && CPh == D && RPh == MID && RLeft == 0;

	assign	m_axis_tvalid = State == RUN && (zero || s_axis_tvalid);
	assign	m_axis_tdata = zero? '0 : s_axis_tdata;
	assign	m_axis_tlast = strip_end;
	assign	s_axis_tready = State == RUN && !zero && m_axis_tready;
	uwire  o_take = m_axis_tvalid && m_axis_tready;

	assign	busy = State != IDLE;
	assign	err = {ErrCfg, ErrLast};

	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
			ErrLast <= 0;
		end
		else begin
			unique case(State)
			IDLE: if(start) begin
				H <= cfg_h;
				W <= cfg_w;
				Tiles <= cfg_tiles;
				Halo <= cfg_halo;
				CB <= cfg_cb;
				Pad <= cfg_pad;
				OpenL <= cfg_open_l;
				OpenR <= cfg_open_r;
				S <= 0;
				SAcc <= 0;
				Strip <= 0;
				X0 <= 0;
				ErrCfg <= 0;
				ErrLast <= 0;
				if(cfg_h == 0 || cfg_w == 0 || cfg_tiles == 0 || cfg_cb == 0)  ErrCfg <= 1;
				else  State <= DIV;
			end
			DIV: begin	// S = W / Tiles by repeated addition
				if(SAcc == (DIM_BITS+1)'(W))  State <= SETUP;
				else if(SAcc > (DIM_BITS+1)'(W)) begin
					ErrCfg <= 1;
					State <= IDLE;
				end
				else begin
					SAcc <= SAcc + (DIM_BITS+1)'(Tiles);
					S <= S + 1;
				end
			end
			SETUP: begin	// the strip at X0: its geometry, and the counters at its first beat
				PL <= pl_w;
				PR <= pr_w;
				DCols <= dcols_w;
				RPh <= pad_on? TOP : MID;
				RLeft <= pad_on? Pad - 1 : H - 1;
				CPh <= pl_w? L : D;
				CLeft <= pl_w? CW'(Pad) - 1 : dcols_w - 1;
				BLeft <= CB - 1;
				State <= RUN;
			end
			RUN: if(o_take) begin
				if(!zero && s_axis_tlast != last_data)  ErrLast <= 1;
				BLeft <= beat_end? CB - 1 : BLeft - 1;
				if(beat_end) begin
					if(CLeft != 0)  CLeft <= CLeft - 1;
					else if(CPh == L) begin
						CPh <= D;
						CLeft <= DCols - 1;
					end
					else if(CPh == D && PR) begin
						CPh <= R;
						CLeft <= CW'(Pad) - 1;
					end
					else begin	// end of a row
						CPh <= PL? L : D;
						CLeft <= PL? CW'(Pad) - 1 : DCols - 1;
						if(RLeft != 0)  RLeft <= RLeft - 1;
						else if(RPh == TOP) begin
							RPh <= MID;
							RLeft <= H - 1;
						end
						else if(RPh == MID && pad_on) begin
							RPh <= BOT;
							RLeft <= Pad - 1;
						end
						else begin	// end of the strip
							Strip <= Strip + 1;
							X0 <= X0 + XB'(S);
							State <= Strip + 1 == Tiles? IDLE : SETUP;
						end
					end
				end
			end
			default: ;
			endcase
		end
	end
endmodule
