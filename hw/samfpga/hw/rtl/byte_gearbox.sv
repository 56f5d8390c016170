// Byte gearbox: a byte stream re-cut from IN_B bytes per beat to OUT_B (byte 0 in tdata[7:0] on both sides), for
// units of different widths on one stream (the engine's reader and writer around its depthwise unit).
//
// A packet's last input beat (tlast) may be partial: s_tkeep's low bytes set, contiguous. Its bytes are sent as
// whole output beats and, where the packet is not a multiple of OUT_B, a last partial beat (m_tkeep); m_tlast on
// the packet's last output beat. Bytes of one packet never share an output beat with the next packet's.
// A buffer of IN_B + OUT_B bytes: an input beat is taken while the buffer has room for it once this cycle's output
// beat (if any) has left, and no packet's tail is waiting; an output beat leaves whenever OUT_B bytes (or a tail)
// are held; so the narrower side runs every cycle (s_axis_tready depends on m_axis_tready). A tlast beat with no
// bytes ends an empty packet: nothing is sent.
// Outside a packet's tail every count is a multiple of G = gcd(IN_B, OUT_B) bytes, so an output shifts the buffer by
// the constant OUT_B and an input lands at one of OUT_B / G + 1 offsets: a small mux per byte, not a barrel shifter
// (the tail's last output clears the buffer instead). IN_B = OUT_B passes the stream through.
// IN_B > OUT_B (a split; the window's 9 taps to the GEMM unit's SIMD): no shifting buffer. The input beat is held and
// read out OUT_B bytes at a time from offset P (a multiple of G); a remainder of fewer than OUT_B bytes of a beat
// that does not end its packet moves to a carry register (always the held beat's top bytes: such a beat is whole),
// and the next beat's first output is the carry followed by its first bytes. Every output is one OUT_B-byte slice
// of {carry, held beat} at one of (IN_B + OUT_B) / G + 1 offsets: a word mux per output byte, no buffer of
// IN_B + OUT_B bytes to shift and fill.
// OUT_B a multiple K of IN_B (a gather; a LayerNorm's or the softmax's lanes to the unit's or the writer's beats): no
// shifting buffer. Input beat j of an output beat lands in slot j of the output register (each slot's flops load
// it, or are cleared by their reset as the beat leaves: no mux in front of them), so the bytes above the count are
// zero as in the buffer; the K-th beat fills it, and it leaves as the next beat lands in slot 0.

module byte_gearbox #(
	int unsigned  IN_B = 16,
	int unsigned  OUT_B = 8
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [8*IN_B-1:0]  s_axis_tdata,
	input	logic [IN_B-1:0]  s_axis_tkeep,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [8*OUT_B-1:0]  m_axis_tdata,
	output	logic [OUT_B-1:0]  m_axis_tkeep,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	function automatic int unsigned gcd(int unsigned a, int unsigned b);
		while(b != 0) begin
			automatic int unsigned  t = a % b;
			a = b;
			b = t;
		end
		return a;
	endfunction

	localparam int unsigned  CAP = IN_B + OUT_B;
	localparam int unsigned  CB = $clog2(CAP + 1);
	localparam int unsigned  G = gcd(IN_B, OUT_B);

	// the bytes of the input beat: its tkeep's ones (contiguous from byte 0); only they enter
	logic [CB-1:0]  n_in;
	logic [8*IN_B-1:0]  in_bytes;
	always_comb begin
		n_in = 0;
		for(int unsigned  i = 0; i < IN_B; i++) begin
			n_in += CB'(s_axis_tkeep[i]);
			in_bytes[8*i +: 8] = s_axis_tkeep[i]? s_axis_tdata[8*i +: 8] : '0;
		end
	end

	if(IN_B == OUT_B) begin : genPass
		assign	m_axis_tdata = s_axis_tdata;
		assign	m_axis_tkeep = s_axis_tkeep;
		assign	m_axis_tlast = s_axis_tlast;
		assign	m_axis_tvalid = s_axis_tvalid;
		assign	s_axis_tready = m_axis_tready;
	end : genPass
	else if(IN_B > OUT_B) begin : genSplit
		logic [8*IN_B-1:0]  H = '0;	// the held beat: bytes P .. P + HN - 1 unread
		logic [8*OUT_B-1:0]  C = '0;	// the carry: its top R bytes
		logic [CB-1:0]  P = 0, HN = 0, R = 0;
		logic  HT = 0;	// the held bytes end a packet

		uwire [CB-1:0]  avail = R + HN;
		assign	m_axis_tvalid = avail >= CB'(OUT_B) || (HT && avail != 0);
		assign	m_axis_tlast = HT && avail <= CB'(OUT_B);
		always_comb begin
			for(int unsigned  i = 0; i < OUT_B; i++)  m_axis_tkeep[i] = CB'(i) < avail;
		end
		// the output: OUT_B bytes of {zeros, H, C} from byte q = OUT_B - R + P (R > 0 only while P = 0)
		uwire [CB-1:0]  q = CB'(OUT_B) - R + P;
		uwire [8*(IN_B+2*OUT_B)-1:0]  win = {(8*OUT_B)'(0), H, C};
		always_comb begin
			m_axis_tdata = '0;
			for(int unsigned  k = 0; k <= (IN_B + OUT_B) / G; k++)
				if(q == CB'(k * G))  m_axis_tdata = win[8*G*k +: 8*OUT_B];
		end
		uwire  m_take = m_axis_tvalid && m_axis_tready;

		// an output takes the carry and OUT_B - R held bytes (a tail's last: all it has)
		uwire [CB-1:0]  take_h = avail >= CB'(OUT_B)? CB'(OUT_B) - R : HN;
		uwire [CB-1:0]  hn_after = m_take? HN - take_h : HN;
		uwire  to_carry = m_take && !HT && hn_after != 0 && hn_after < CB'(OUT_B);
		assign	s_axis_tready = (HN == 0 && !HT) || (m_take && (hn_after == 0 || to_carry));
		uwire  s_take = s_axis_tvalid && s_axis_tready;
		uwire [CB-1:0]  r_after = to_carry? hn_after : m_take? '0 : R;

		always_ff @(posedge clk) begin
			if(rst) begin
				H <= '0;
				C <= '0;
				P <= 0;
				HN <= 0;
				R <= 0;
				HT <= 0;
			end
			else begin
				if(to_carry)  C <= H[8*(IN_B-OUT_B) +: 8*OUT_B];
				R <= r_after;
				if(s_take) begin
					H <= in_bytes;
					P <= 0;
					HN <= n_in;
					HT <= s_axis_tlast && (n_in != 0 || r_after != 0);
				end
				else if(m_take) begin
					P <= P + take_h;
					HN <= to_carry? '0 : hn_after;
					if(m_axis_tlast)  HT <= 0;
				end
			end
		end
	end : genSplit
	else if(OUT_B % IN_B == 0) begin : genGather
		localparam int unsigned  K = OUT_B / IN_B;
		localparam int unsigned  KB = $clog2(K + 1);
		logic [8*OUT_B-1:0]  Buf = '0;	// slots Idx and above are zero
		logic [KB-1:0]  Idx = 0;	// slots held
		logic [CB-1:0]  Cnt = 0;	// bytes held
		logic  Tail = 0;	// the held bytes end a packet

		assign	m_axis_tvalid = Idx == KB'(K) || Tail;
		assign	m_axis_tdata = Buf;
		assign	m_axis_tlast = Tail;
		always_comb begin
			for(int unsigned  i = 0; i < OUT_B; i++)  m_axis_tkeep[i] = CB'(i) < Cnt;
		end
		uwire  m_take = m_axis_tvalid && m_axis_tready;
		assign	s_axis_tready = !Tail && (Idx != KB'(K) || m_take);
		uwire  s_take = s_axis_tvalid && s_axis_tready;
		uwire [KB-1:0]  slot = m_take? '0 : Idx;	// where an input lands
		uwire [CB-1:0]  cnt_after = (m_take? '0 : Cnt) + n_in;

		for(genvar  j = 0; j < K; j++) begin : genSlot
			uwire  load = s_take && slot == KB'(j);
			// the reset pin clears a slot the leaving beat frees (a flop's own reset, not a mux on its data)
			always_ff @(posedge clk) begin
				if(rst || (m_take && !load))  Buf[8*IN_B*j +: 8*IN_B] <= '0;
				else if(load)  Buf[8*IN_B*j +: 8*IN_B] <= in_bytes;
			end
		end : genSlot
		always_ff @(posedge clk) begin
			if(rst) begin
				Idx <= 0;
				Cnt <= 0;
				Tail <= 0;
			end
			else if(s_take) begin
				// an empty packet's tlast beat with nothing held: nothing to send
				Idx <= s_axis_tlast && cnt_after == 0? '0 : slot + 1;
				Cnt <= cnt_after;
				Tail <= s_axis_tlast && cnt_after != 0;
			end
			else if(m_take) begin
				Idx <= 0;
				Cnt <= 0;
				Tail <= 0;
			end
		end
	end : genGather
	else begin : genBox
		logic [8*CAP-1:0]  Buf = '0;	// bytes Cnt and above are zero
		logic [CB-1:0]  Cnt = 0;	// bytes held, from byte 0
		logic  Tail = 0;	// the held bytes end a packet

		uwire  full_out = Cnt >= CB'(OUT_B);
		assign	m_axis_tvalid = full_out || (Tail && Cnt != 0);
		assign	m_axis_tdata = Buf[8*OUT_B-1:0];
		assign	m_axis_tlast = Tail && Cnt <= CB'(OUT_B);
		always_comb begin
			for(int unsigned  i = 0; i < OUT_B; i++)  m_axis_tkeep[i] = CB'(i) < Cnt;
		end
		uwire  m_take = m_axis_tvalid && m_axis_tready;

		// an input is taken only outside a tail, where an output takes OUT_B: the beat lands at byte `left`, a
		// multiple of G up to OUT_B
		uwire [CB-1:0]  left = m_take? Cnt - CB'(OUT_B) : Cnt;
		assign	s_axis_tready = !Tail && left <= CB'(CAP - IN_B);
		uwire  s_take = s_axis_tvalid && s_axis_tready;

		logic [8*CAP-1:0]  incoming;
		always_comb begin
			incoming = '0;
			for(int unsigned  k = 0; k <= OUT_B / G; k++)
				if(left == CB'(k * G))  incoming = (8*CAP)'(in_bytes) << (8 * G * k);
		end
		uwire [8*CAP-1:0]  kept = !m_take? Buf : m_axis_tlast? '0 : Buf >> (8 * OUT_B);
		always_ff @(posedge clk) begin
			if(rst) begin
				Buf <= '0;
				Cnt <= 0;
				Tail <= 0;
			end
			else begin
				Buf <= s_take? kept | incoming : kept;
				Cnt <= m_take && m_axis_tlast? (s_take? n_in : '0) : s_take? left + n_in : left;
				if(s_take && s_axis_tlast)  Tail <= left + n_in != 0;
				else if(m_take && m_axis_tlast)  Tail <= 0;
			end
		end
	end : genBox

endmodule : byte_gearbox
