// Streaming axis permutation of one page: TinyViT's window partition / reverse and the attention head split /
// merge (a Transpose whose leading axes stay in place), one word per cycle, replacing FINN+'s chain of 2-D
// InnerShuffles. A page is K axes SHAPE[0] (outermost) .. SHAPE[K-1] of words (a word = SIMD elements of the
// innermost axes that stay innermost); each page arrives in row-major order and leaves with output axis j =
// input axis PERM[j]. Pages follow each other without limit (the leading axes of the tensor are just more pages).
//
// PAGES = 2 (any SHAPE): ping-pong. Page n is written at its input position into half n%2 and read in
//   permuted order by a mixed-radix counter with the input strides; 2 pages of memory.
// PAGES = 1 (every SHAPE[i] a power of two): one page of memory, in place. Each word read frees its slot for
//   the word of the next page that arrives at the same step, so page n is written with the address map F^n and
//   read with F^(n+1), where F (output position -> input position) is a permutation of address bits: address
//   bit p = counter bit SEL[p], and SEL advances by the bit permutation SIGMA at each page (wires, no logic).
//   The innermost axis may be of any size C when it stays innermost (PERM[K-1] = K-1): its C words keep their
//   order, so the step splits into (outer, inner) and the address is F^n(outer) x C + inner (mixed radix; the
//   outer axes are powers of two). A window partition of C channels with C not a power of two is one page, not two.
//
// Flow control (both modes) by the occupancy O = words written - words read:
//   write step t may go when its slot is free:     PAGES=1: O < P;   PAGES=2: O <= P + t
//   read step u of a page when the page is in:     O >= P - u
//   (u = 0 may also go while the page's last word is being written: that word lands at address P-1 and
//   F(0) = 0, so the read of address 0 never meets it)
// No read ever meets a write at the same address in the same cycle, so any RAM style works. Reads go through
// the memory's output register into a 2-word output queue; m_tvalid comes from a register.
module page_permute #(
	int unsigned  K = 2,
	parameter logic [K-1:0][31:0]  SHAPE = '{default: 2},	// SHAPE[0] outermost (literal: element K-1 first)
	parameter logic [K-1:0][31:0]  PERM = '{default: 0},	// output axis j = input axis PERM[j]
	int unsigned  WIDTH = 8,	// stream width in bits (padded to bytes)
	int unsigned  DBITS = WIDTH,	// meaningful bits of a word (SIMD x element bits): what the memory stores
	int unsigned  PAGES = 2,	// 1: in place (power-of-two SHAPE); 2: ping-pong
	parameter  RAM_STYLE = "auto"	// "block", "distributed", "ultra" or "auto" (the tool decides)
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [WIDTH-1:0]  s_tdata,
	input	logic  s_tvalid,
	output	logic  s_tready,

	output	logic [WIDTH-1:0]  m_tdata,
	output	logic  m_tvalid,
	input	logic  m_tready
);

	// --- constants ------------------------------------------------------------------------------------------
	function automatic longint unsigned page_words();
		automatic longint unsigned  p = 1;
		for(int unsigned  i = 0; i < K; i++)  p *= SHAPE[i];
		return  p;
	endfunction : page_words
	localparam longint unsigned  P = page_words();
	localparam int unsigned  DEPTH = PAGES * P;
	localparam int unsigned  AB = DEPTH > 1? $clog2(DEPTH) : 1;	// memory address bits
	localparam int unsigned  CB = P > 1? $clog2(P) : 1;	// in-page counter bits
	localparam int unsigned  OB = $clog2(DEPTH + 1);	// occupancy bits

	// input stride of input axis i (words)
	function automatic longint unsigned in_stride(int unsigned  i);
		automatic longint unsigned  s = 1;
		for(int unsigned  k = i + 1; k < K; k++)  s *= SHAPE[k];
		return  s;
	endfunction : in_stride

	// ping-pong read: address step when output axis j increments and every axis inside it wraps
	function automatic longint signed delta(int unsigned  j);
		automatic longint signed  d = in_stride(PERM[j]);
		for(int unsigned  k = j + 1; k < K; k++)  d -= (SHAPE[PERM[k]] - 1) * in_stride(PERM[k]);
		return  d;
	endfunction : delta

	// in-place mode: bits of input axis i, its first bit in the input index, its output axis's first bit
	function automatic int unsigned log2_exact(longint unsigned  n);
		automatic int unsigned  b = 0;
		while((64'd1 << b) < n)  b++;
		return  b;
	endfunction : log2_exact
	// mixed radix: the innermost axis stays innermost and is not a power of two (in place only)
	localparam bit  MIXED = PAGES == 1 && K > 1 && PERM[K-1] == K-1 && (64'd1 << log2_exact(SHAPE[K-1])) != SHAPE[K-1];
	localparam int unsigned  KO = MIXED? K-1 : K;	// axes of the bit-permuted (outer) step
	localparam longint unsigned  C = MIXED? SHAPE[K-1] : 1;	// words per outer step
	localparam longint unsigned  PO = P / C;	// outer steps per page
	localparam int unsigned  OCB = PO > 1? $clog2(PO) : 1;	// outer counter bits
	localparam int unsigned  IB = C > 1? $clog2(C) : 1;	// inner counter bits
	function automatic int unsigned in_offset(int unsigned  i);
		automatic int unsigned  o = 0;
		for(int unsigned  k = i + 1; k < KO; k++)  o += log2_exact(SHAPE[k]);
		return  o;
	endfunction : in_offset
	function automatic int unsigned out_offset(int unsigned  j);
		automatic int unsigned  o = 0;
		for(int unsigned  k = j + 1; k < KO; k++)  o += log2_exact(SHAPE[PERM[k]]);
		return  o;
	endfunction : out_offset
	// SIGMA(p): the output-index bit that input-index bit p takes its value from
	function automatic int unsigned sigma(int unsigned  p);
		for(int unsigned  j = 0; j < KO; j++) begin
			automatic int unsigned  i = PERM[j];
			automatic int unsigned  lo = in_offset(i);
			if(p >= lo && p < lo + log2_exact(SHAPE[i]))  return  out_offset(j) + (p - lo);
		end
		return  0;
	endfunction : sigma
	function automatic bit shape_pow2();
		for(int unsigned  i = 0; i < KO; i++)  if((64'd1 << log2_exact(SHAPE[i])) != SHAPE[i])  return  0;
		return  1;
	endfunction : shape_pow2

	// tables of the two address schemes (constant functions at module scope: slang wants them there)
	typedef logic [K-1:0][CB:0]  delta_t;	// ping-pong: signed address steps, CB+1 bits each
	function automatic delta_t deltas();
		automatic delta_t  d;
		for(int unsigned  j = 0; j < K; j++)  d[j] = (CB+1)'(delta(j));
		return  d;
	endfunction : deltas
	localparam delta_t  DELTA = deltas();
	localparam int unsigned  SB = OCB > 1? $clog2(OCB) : 1;
	typedef logic [OCB-1:0][SB-1:0]  sel_t;	// in place: an outer-step bit index per outer address bit
	function automatic sel_t sel_init(bit  first_read);
		automatic sel_t  s;
		for(int unsigned  p = 0; p < OCB; p++)  s[p] = SB'(first_read? sigma(p) : p);
		return  s;
	endfunction : sel_init
	localparam sel_t  SIGMA = sel_init(1);
	localparam sel_t  IDENT = sel_init(0);

	initial begin
		if(PAGES != 1 && PAGES != 2)  $error("page_permute: PAGES must be 1 or 2, not %0d", PAGES);
		if(P < 2)  $error("page_permute: a page needs at least 2 words");
		if(DBITS > WIDTH)  $error("page_permute: DBITS %0d exceeds the stream width %0d", DBITS, WIDTH);
		if(PAGES == 1 && !shape_pow2())  $error("page_permute: PAGES=1 needs power-of-two SHAPE (but an innermost axis that stays)");
	end

	// --- flow control ---------------------------------------------------------------------------------------
	logic [OB-1:0]  O = 0;	// words written, not yet read
	logic [CB-1:0]  WCnt = 0;	// write step within the page
	logic [CB-1:0]  RCnt = 0;	// read step within the page

	uwire  wr = s_tvalid && s_tready;
	if(PAGES == 1) begin : genReady1
		assign	s_tready = O < OB'(P);
	end : genReady1
	else begin : genReady2
		assign	s_tready = {1'b0, O} <= (OB+1)'(P) + (OB+1)'(WCnt);
	end : genReady2

	// output queue (2 words) fed by the memory's output register
	logic [1:0]  QCnt = 0;
	logic [DBITS-1:0]  Q [2];
	logic  RVld = 0;
	logic [DBITS-1:0]  RData;
	uwire  pop = m_tvalid && m_tready;
	uwire  space = {1'b0, QCnt} + {2'b0, RVld} < 3'd2 + {2'b0, pop};
	uwire  in_page = ({1'b0, O} + (OB+1)'(RCnt) >= (OB+1)'(P)) || (RCnt == 0 && O == OB'(P - 1) && wr);
	uwire  rd = in_page && space;

	always_ff @(posedge clk) begin
		if(rst) begin
			O <= 0;
			WCnt <= 0;
			RCnt <= 0;
		end
		else begin
			O <= O + OB'(wr) - OB'(rd);
			if(wr)  WCnt <= (WCnt == CB'(P - 1))? 0 : WCnt + 1;
			if(rd)  RCnt <= (RCnt == CB'(P - 1))? 0 : RCnt + 1;
		end
	end

	// --- addresses ------------------------------------------------------------------------------------------
	uwire [AB-1:0]  waddr;
	uwire [AB-1:0]  raddr;
	if(PAGES == 2) begin : genPingPong
		logic  WBank = 0;
		logic  RBank = 0;
		logic [CB-1:0]  RAddr = 0;	// input position of the word read at step RCnt
		logic [K-1:0][CB-1:0]  RIdx = '0;	// output-axis counters
		// axis j wraps when it and every axis inside it is at its last index; the innermost axis that does not
		// wrap increments and the address moves by DELTA of it
		uwire [K:0]  wrap;
		uwire [K:0][CB:0]  step;	// step[j]: the address step chosen among axes j..K-1
		assign	wrap[K] = 1;
		assign	step[K] = '0;
		for(genvar  j = 0; j < K; j++) begin : genAxis
			assign	wrap[j] = wrap[j+1] && (RIdx[j] == CB'(SHAPE[PERM[j]] - 1));
			assign	step[j] = (wrap[j+1] && !wrap[j])? DELTA[j] : step[j+1];
			always_ff @(posedge clk) begin
				if(rst)  RIdx[j] <= 0;
				else if(rd && wrap[j+1])  RIdx[j] <= wrap[j]? 0 : RIdx[j] + 1;
			end
		end : genAxis
		always_ff @(posedge clk) begin
			if(rst) begin
				WBank <= 0;
				RBank <= 0;
				RAddr <= 0;
			end
			else begin
				if(wr && WCnt == CB'(P - 1))  WBank <= !WBank;
				if(rd) begin
					RAddr <= wrap[0]? 0 : RAddr + step[0][CB-1:0];
					if(wrap[0])  RBank <= !RBank;
				end
			end
		end
		assign	waddr = AB'(WBank? longint'(P) + longint'(WCnt) : longint'(WCnt));
		assign	raddr = AB'(RBank? longint'(P) + longint'(RAddr) : longint'(RAddr));
	end : genPingPong
	else begin : genInPlace
		// outer step (bit-permuted) and, in mixed radix, inner step of the write and the read
		uwire [OCB-1:0]  wout, rout;
		uwire [AB-1:0]  wbase, rbase;
		if(MIXED) begin : genMixed
			logic [OCB-1:0]  WOut = 0, ROut = 0;
			logic [IB-1:0]  WIn = 0, RIn = 0;
			always_ff @(posedge clk) begin
				if(rst) begin
					WOut <= 0;  WIn <= 0;
					ROut <= 0;  RIn <= 0;
				end
				else begin
					// PO is a power of two: the outer steps wrap by themselves at the page's end
					if(wr) begin
						WIn <= (WIn == IB'(C - 1))? 0 : WIn + 1;
						if(WIn == IB'(C - 1))  WOut <= WOut + 1;
					end
					if(rd) begin
						RIn <= (RIn == IB'(C - 1))? 0 : RIn + 1;
						if(RIn == IB'(C - 1))  ROut <= ROut + 1;
					end
				end
			end
			assign	wout = WOut;
			assign	rout = ROut;
			assign	wbase = AB'(WIn);
			assign	rbase = AB'(RIn);
		end : genMixed
		else begin : genPow2
			assign	wout = WCnt;
			assign	rout = RCnt;
			assign	wbase = '0;
			assign	rbase = '0;
		end : genPow2
		// address bit p = counter bit Sel[p]; the next page's Sel[p] = Sel[SIGMA[p]] (wires)
		sel_t  WSel = IDENT;	// page 0 is written in input order
		sel_t  RSel = SIGMA;	// ... and read through F
		uwire sel_t  WNext, RNext;
		for(genvar  p = 0; p < OCB; p++) begin : genSel
			assign	WNext[p] = WSel[SIGMA[p]];
			assign	RNext[p] = RSel[SIGMA[p]];
		end : genSel
		always_ff @(posedge clk) begin
			if(rst) begin
				WSel <= IDENT;
				RSel <= SIGMA;
			end
			else begin
				if(wr && WCnt == CB'(P - 1))  WSel <= WNext;
				if(rd && RCnt == CB'(P - 1))  RSel <= RNext;
			end
		end
		uwire [OCB-1:0]  wperm, rperm;
		for(genvar  p = 0; p < OCB; p++) begin : genBit
			assign	wperm[p] = wout[WSel[p]];
			assign	rperm[p] = rout[RSel[p]];
		end : genBit
		// x C: a constant multiplier (shift-adds, one per set bit of C beyond the first); C = 1 leaves the bits
		assign	waddr = AB'(longint'(wperm) * longint'(C)) + wbase;
		assign	raddr = AB'(longint'(rperm) * longint'(C)) + rbase;
	end : genInPlace

	// --- memory ---------------------------------------------------------------------------------------------
	sdp_ram #(.WIDTH(DBITS), .DEPTH(DEPTH), .AB(AB), .RAM_STYLE(RAM_STYLE)) ram (
		.clk,
		.we(wr), .waddr, .wdata(s_tdata[DBITS-1:0]),
		.re(rd), .raddr, .rdata(RData)
	);

	always_ff @(posedge clk) begin
		if(rst) begin
			RVld <= 0;
			QCnt <= 0;
		end
		else begin
			RVld <= rd;
			// the queue: head Q[0]; a popped head is replaced by Q[1] or the arriving word
			if(pop) begin
				Q[0] <= (QCnt == 2)? Q[1] : RData;
				if(QCnt == 2 && RVld)  Q[1] <= RData;
			end
			else if(RVld) begin
				if(QCnt == 0)  Q[0] <= RData;
				else  Q[1] <= RData;
			end
			QCnt <= QCnt + 2'(RVld) - 2'(pop);
		end
	end
	assign	m_tvalid = QCnt != 0;
	assign	m_tdata = WIDTH'(Q[0]);

endmodule : page_permute
