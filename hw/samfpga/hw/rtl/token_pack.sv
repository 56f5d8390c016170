// Token pack: the engine's unit side towards its writer. Input: whole IN_B-byte beats (the unit's PE bytes, no tlast)
// in tokens of cfg_beats beats, of which only each token's first cfg_keep bytes are kept (the rest is the unit's
// outputs padded to whole PE folds); output: the kept bytes back to back in OUT_B-byte beats (the writer's AXI
// beats), the frame's last beat partial (m_tkeep) with m_tlast. cfg_beats = 0: every byte is kept.
//
// `start` (a one-cycle pulse: the step's start) samples cfg_beats / cfg_keep and clears the state; `go` loads the
// frame's byte count (`bytes` >= 1: the writer's own, once its walk has sized the frame), and no input is taken
// before it. The beat that holds the frame's last kept byte ends the frame; the beats of its token after it are
// taken and dropped, as are bytes past the frame in a last beat (a partial last beat of the unit side).
//
// A split whose input beats may be partial: the held beat H (its bytes P .. P + HN - 1 unread) and a carry C (its
// top R bytes, before H's: R > 0 only while P = 0). An output is OUT_B bytes of {zeros, H, C} from byte
// OUT_B - R + P; bytes left that make no whole output (a beat's remainder, or a partial beat's bytes that make none
// with the carry) move to the carry, which always takes the OUT_B bytes of {H, C} that end where H's valid bytes end
// (P + HN, constant while a beat is held). Counts are multiples of G = gcd(IN_B, OUT_B) outside a frame's last
// beat, as cfg_keep must be: every data mux has (IN_B + OUT_B) / G + 1 or IN_B / G + 1 inputs, no barrel shifter.

module token_pack #(
	int unsigned  IN_B = 40,	// bytes per input beat
	int unsigned  OUT_B = 16,	// bytes per output beat
	int unsigned  BYTES_BITS = 40,	// width of the frame's byte count
	int unsigned  BEAT_BITS = 16,	// width of the beats per token
	int unsigned  KEEP_BITS = 24	// width of the kept bytes per token
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [BEAT_BITS-1:0]  cfg_beats,
	input	logic [KEEP_BITS-1:0]  cfg_keep,
	input	logic  go,
	input	logic [BYTES_BITS-1:0]  bytes,

	input	logic [8*IN_B-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [8*OUT_B-1:0]  m_tdata,
	output	logic [OUT_B-1:0]  m_tkeep,
	output	logic  m_tlast,
	output	logic  m_tvalid,
	input	logic  m_tready
);
	function automatic int unsigned gcd(int unsigned a, int unsigned b);
		while(b != 0) begin
			automatic int unsigned  t = a % b;
			a = b;
			b = t;
		end
		return a;
	endfunction

	localparam int unsigned  G = gcd(IN_B, OUT_B);
	localparam int unsigned  CB = $clog2(IN_B + 2*OUT_B + 1);

	//=======================================================================
	// Input side: each beat's kept bytes (its token's, the frame's)

	logic [BEAT_BITS-1:0]  Beats = 0, BeatLeft = 0;	// beats a token; beats of this token to come (0: a new token)
	logic [KEEP_BITS-1:0]  Keep = 0, KeepLeft = 0;	// bytes kept a token; ... of this token not yet seen
	logic [BYTES_BITS-1:0]  Left = 0;	// bytes of the frame not yet taken in
	logic  Sized = 0;

	uwire [KEEP_BITS-1:0]  tok_left = BeatLeft == 0? Keep : KeepLeft;
	uwire [KEEP_BITS-1:0]  k_tok = Beats == 0 || tok_left >= KEEP_BITS'(IN_B)? KEEP_BITS'(IN_B) : tok_left;
	uwire [CB-1:0]  n = BYTES_BITS'(k_tok) >= Left? CB'(Left) : CB'(k_tok);	// kept bytes of this beat
	uwire  in_last = n != 0 && BYTES_BITS'(n) == Left;	// it holds the frame's last kept byte
	uwire  core_ready;
	// a beat with nothing kept is dropped at once
	assign	s_tready = Sized && (n == 0 || core_ready);
	uwire  s_take = s_tvalid && s_tready;
	uwire  load = s_take && n != 0;

	always_ff @(posedge clk) begin
		if(rst || start) begin
			Sized <= 0;
			Left <= 0;
			BeatLeft <= 0;
			KeepLeft <= 0;
			if(rst) begin
				Beats <= 0;
				Keep <= 0;
			end
			else begin
				Beats <= cfg_beats;
				Keep <= cfg_keep;
			end
		end
		else begin
			if(go) begin
				Sized <= 1;
				Left <= bytes;
			end
			else if(s_take)  Left <= Left - BYTES_BITS'(n);
			if(s_take && Beats != 0) begin
				BeatLeft <= (BeatLeft == 0? Beats : BeatLeft) - 1;
				KeepLeft <= tok_left - k_tok;
			end
		end
	end

	//=======================================================================
	// The split: held beat and carry

	logic [8*IN_B-1:0]  H = '0;
	logic [8*OUT_B-1:0]  C = '0;
	logic [CB-1:0]  P = 0, HN = 0, R = 0;
	logic  HT = 0;	// the held bytes end the frame

	uwire [CB-1:0]  avail = R + HN;
	assign	m_tvalid = avail >= CB'(OUT_B) || (HT && avail != 0);
	assign	m_tlast = HT && avail <= CB'(OUT_B);
	always_comb begin
		for(int unsigned  i = 0; i < OUT_B; i++)  m_tkeep[i] = CB'(i) < avail;
	end
	uwire [CB-1:0]  q = CB'(OUT_B) - R + P;
	uwire [8*(IN_B+2*OUT_B)-1:0]  win = {(8*OUT_B)'(0), H, C};
	always_comb begin
		m_tdata = '0;
		for(int unsigned  k = 0; k <= (IN_B + OUT_B) / G; k++)
			if(q == CB'(k * G))  m_tdata = win[8*G*k +: 8*OUT_B];
	end
	uwire  m_take = m_tvalid && m_tready;

	uwire [CB-1:0]  take_h = avail >= CB'(OUT_B)? CB'(OUT_B) - R : HN;
	uwire [CB-1:0]  hn_after = m_take? HN - take_h : HN;
	uwire  to_carry = m_take && !HT && hn_after != 0 && hn_after < CB'(OUT_B);
	uwire  absorb = !m_tvalid && !HT && HN != 0;	// too few bytes for an output: all to the carry
	assign	core_ready = (HN == 0 && !HT) || (m_take && (hn_after == 0 || to_carry)) || absorb;

	// the carry's next value: the OUT_B bytes of {H, C} that end at H's valid end E = P + HN
	uwire [CB-1:0]  e = P + HN;
	uwire [8*(IN_B+OUT_B)-1:0]  hc = {H, C};
	logic [8*OUT_B-1:0]  c_next;
	always_comb begin
		c_next = '0;
		for(int unsigned  k = 0; k <= IN_B / G; k++)
			if(e == CB'(k * G))  c_next = hc[8*G*k +: 8*OUT_B];
	end

	always_ff @(posedge clk) begin
		if(rst || start) begin
			H <= '0;
			C <= '0;
			P <= 0;
			HN <= 0;
			R <= 0;
			HT <= 0;
		end
		else begin
			if(to_carry || absorb)  C <= c_next;
			R <= to_carry? hn_after : absorb? avail : m_take? '0 : R;
			if(load) begin
				H <= s_tdata;
				P <= 0;
				HN <= n;
				HT <= in_last;
			end
			else if(m_take) begin
				P <= P + take_h;
				HN <= to_carry? '0 : hn_after;
				if(m_tlast)  HT <= 0;
			end
			else if(absorb)  HN <= 0;
		end
	end
endmodule : token_pack
