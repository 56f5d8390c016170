// Integer softmax over rows of N logits, PE lanes per beat, with the logit scale, an additive per-row bias
// table (attention relative-position bias) and the output quantizer folded in: the arithmetic of
// sw/samfpga/kernels/softmax.py (int_softmax), bit for bit.
//   u  = (a*MULT + BIAS[row mod ROWS][j] + 2^(P-1)) >>> P      (input phase: N/PE beats, running max)
//   e  = EXP[(max-u) mod 2^G] >> ((max-u) >> G), 0 beyond E     (exponent phase: N/PE cycles, running sum S)
//   RC = K / S                                                  (one division per row)
//   y  = min((e*RC + 2^(W-1)) >> W, 2^OUT_BITS - 1)             (output phase: N/PE beats)
// Two architectures of the same arithmetic (the same words out, cycle counts differ):
//  - PIPELINED = 0 (small): one row at a time, the phases one after another and a restoring divider that finds
//    one quotient bit per cycle (KB cycles): 3 N/PE + KB cycles per row, one row buffer.
//  - PIPELINED = 1 (keeps up with its input): the phases of successive rows overlap. The input phase writes one of
//    two u buffers while the exponent phase reads the other; the exponent phase writes e into a ring of NS row
//    slots; a pipelined divider (DSB quotient bits per stage, DS stages, one division accepted per cycle) finds
//    each row's RC; the output phase reads the ring in row order once the row's RC is there. A row then takes
//    N/PE cycles (+1 with a full bias table), the latency is about 2 N/PE + DS. The divider only finds the
//    KB - E quotient bits that can be non-zero: S >= 2^E (the maximum's e is EXP[0] = 2^E), so K / S < 2^(KB-E).
// Tables: EXP_FILE (2^G entries of E+1 bits, one per line), BIAS_FILE (ROWS*N signed
// entries of BB bits, row-major, packed PE to a line, entry j of a beat in bits [j*BB +: BB]; ROWS = 0: no bias),
// both $readmemh hex. The bias table is read one beat-wide word per cycle through a register (address one beat
// ahead, one priming cycle per row), so synthesis maps it to block RAM instead of PE asynchronous LUT ROMs.
// SIDE > 0 (a power of two, N = SIDE^2): the bias depends only on the head and the absolute offset of query and
// key in a SIDE x SIDE window (TinyViT's attention bias): BIAS_FILE then holds ROWS/N * N entries, one per line,
// BIAS[h][|yq-yk|*SIDE + |xq-xk|] for row r = h*N + q, and each lane looks its entry up in a small LUT ROM, or with
// BIAS_RAM = 1 reads it through a register, one copy of the tables per two lanes (a dual-port block RAM for tables
// too large for LUTs), the address one beat ahead and one priming cycle per row as for the whole table.
// In a rolled body (ITERS > 1) the layer serves ITERS blocks in turn, one pass of TOKENS rows each: MULT and K hold
// one 64-bit entry per iteration (iteration i's in bits [i*64 +: 64]), BIAS_FILE the ITERS tables one after the
// other, and the layer counts its own rows to know the iteration (a common pre-shift P: the generator scales each
// iteration's MULT and bias by 2^(P - P_i), which leaves u unchanged). With RT_SET = 1 the input cfg_set picks the
// set instead (a register of the layer-sequential engine, one set per layer); it must hold still while rows of one
// set are in flight (the host changes it between steps).
module int_softmax #(
	int unsigned  N = 16,
	int unsigned  PE = 1,
	int unsigned  IN_BITS = 16,
	bit  IN_SIGNED = 1,
	int unsigned  OUT_BITS = 8,
	int unsigned  ITERS = 1,            // parameter sets (blocks of a rolled body)
	int unsigned  TOKENS = 1,           // rows per pass (one block's map)
	logic [ITERS*64-1:0]  MULT = 1,     // per iteration
	int unsigned  MB = 16,              // bits of MULT (unsigned)
	int unsigned  P = 1,                // pre-shift
	int unsigned  ROWS = 0,
	int unsigned  BB = 16,              // bias entry bits (signed)
	int unsigned  SIDE = 0,             // > 0: compact absolute-offset bias table (see above)
	int unsigned  G = 6,
	int unsigned  E = 16,
	int unsigned  W = 40,
	logic [ITERS*64-1:0]  K = 1,        // per iteration
	int unsigned  KB = 48,              // bits of K
	int unsigned  UB = 40,              // width of u (signed) and of the row buffer entries
	parameter  EXP_FILE = "",
	parameter  BIAS_FILE = "",
	bit  BIAS_RAM = 0,                  // SIDE > 0: compact tables read through a register (block RAM, see above)
	bit  RT_SET = 0,                    // 1: cfg_set picks the parameter set (see above)
	logic [ITERS*8-1:0]  SET_HEADS = '0,  // compact tables: heads of set i in bits [i*8 +: 8]; 0: every set HEADS
	bit  PIPELINED = 0,                 // 1: rows overlap (see above)
	int unsigned  DSB = 2,              // PIPELINED: quotient bits per divider stage

	localparam int unsigned  BEATS = N / PE,
	localparam int unsigned  I_STREAM = (PE*IN_BITS + 7)/8 * 8,
	localparam int unsigned  O_STREAM = (PE*OUT_BITS + 7)/8 * 8,
	localparam int unsigned  AB = BEATS > 1 ? $clog2(BEATS) : 1,
	localparam int unsigned  NBW = ROWS > 0 && SIDE == 0 ? ROWS*BEATS : 1,   // full table: words of PE entries
	localparam int unsigned  HEADS = SIDE > 0 ? ROWS / N : 1,                // compact table: heads x N entries
	localparam int unsigned  SB = SIDE > 1 ? $clog2(SIDE) : 1,
	localparam int unsigned  QB = N > 1 ? $clog2(N) : 1,
	localparam int unsigned  HB = HEADS > 1 ? $clog2(HEADS) : 1,
	localparam int unsigned  BA = ITERS*NBW > 1 ? $clog2(ITERS*NBW) : 1,
	localparam int unsigned  IB = ITERS > 1 ? $clog2(ITERS) : 1,
	localparam int unsigned  TB = TOKENS > 1 ? $clog2(TOKENS) : 1,
	localparam int unsigned  SSB = E + $clog2(N) + 2,          // sum of exponents (unsigned)
	localparam int unsigned  XB = (KB > W ? KB : W) + 2,         // e * RC + rounding (unsigned)
	localparam int unsigned  QN = KB > E ? KB - E : KB,         // PIPELINED: quotient bits found
	localparam int unsigned  DS = (QN + DSB - 1) / DSB,         // PIPELINED: divider stages
	// PIPELINED: row slots of e: a row holds one from its exponent phase to its output (2 N/PE + DS + 1 cycles)
	localparam int unsigned  NS = (2*BEATS + DS + 1 + BEATS - 1) / BEATS + 1,
	localparam int unsigned  SLB = NS > 1 ? $clog2(NS) : 1,
	localparam int unsigned  EA = NS*BEATS > 1 ? $clog2(NS*BEATS) : 1,
	// the bias is read through a register, the address one beat ahead: one cycle priming each row
	localparam bit  PRIME = ROWS > 0 && (SIDE == 0 || BIAS_RAM)
)(
	input	logic  clk,
	input	logic  rst,
	input	logic [(ITERS > 1 ? $clog2(ITERS) : 1)-1:0]  cfg_set,   // RT_SET: the parameter set of the rows sent

	input	logic [I_STREAM-1:0]  i_tdata,
	input	logic  i_tvalid,
	output	logic  i_tready,

	output	logic [O_STREAM-1:0]  o_tdata,
	output	logic  o_tvalid,
	input	logic  o_tready
);

	// ---- input side, shared: the row counters of the row being received, the bias of its beats, u ----
	logic [AB-1:0]  Ptr = '0;            // beat of the row being received
	logic [BA-1:0]  RowBase = '0;        // address of this row's first bias word (in this iteration's table)
	logic [IB-1:0]  Iter = '0;          // parameter set of the row being received
	logic [TB-1:0]  Row = '0;           // row within the pass
	logic  Primed = !PRIME;   // BiasQ holds the bias word of beat Ptr
	logic [HB-1:0]  Head = '0;          // compact table: head and query of this row
	logic [QB-1:0]  Query = '0;
	uwire  accept;                       // a beat of the input accepted this cycle
	uwire [IB-1:0]  iter = ITERS == 1 ? '0 : RT_SET ? cfg_set : Iter;
	// compact tables: heads of set i, the first entry of set i (the sets' tables one after the other), all entries
	function automatic int unsigned set_heads(input int unsigned i);
		return  SET_HEADS == '0 ? HEADS : int'(SET_HEADS[i*8 +: 8]);
	endfunction : set_heads
	function automatic int unsigned set_base(input int unsigned i);
		automatic int unsigned  b = 0;
		for(int unsigned  j = 0; j < ITERS; j++)  if(j < i)  b += set_heads(j) * N;
		return  b;
	endfunction : set_base
	localparam int unsigned  CT = set_base(ITERS);
	localparam int unsigned  CA = CT > 1 ? $clog2(CT) : 1;
	// K of parameter set i (a constant select when there is one set)
	function automatic logic [63:0] k_of(input logic [IB-1:0] i);
		return  ITERS > 1 ? K[i*64 +: 64] : K[63:0];
	endfunction : k_of
	uwire [63:0]  mult = ITERS > 1 ? MULT[iter*64 +: 64] : MULT[63:0];

	logic [E:0]  Exp[1 << G];
	initial  if(EXP_FILE != "")  $readmemh(EXP_FILE, Exp);
	// bias word of the next beat: registered read, address one accepted beat ahead (the last beat's look-ahead
	// address is never used: the row ends and the next row primes again)
	uwire [BA-1:0]  bias_addr = BA'(iter*NBW) + RowBase + BA'(accept && Ptr != AB'(BEATS-1) ? Ptr + AB'(1) : Ptr);
	logic [PE*BB-1:0]  BiasQ;             // the bias entries of the current beat
	if(ROWS > 0 && SIDE == 0) begin : genFullBias
		logic [PE*BB-1:0]  Bias[ITERS*NBW];
		initial  if(BIAS_FILE != "")  $readmemh(BIAS_FILE, Bias);
		always_ff @(posedge clk)  BiasQ <= Bias[bias_addr];
	end : genFullBias
	else if(SIDE > 0) begin : genCompactBias
		uwire [SB-1:0]  yq = Query[QB-1:SB];
		uwire [SB-1:0]  xq = Query[SB-1:0];
		// entry of lane l at beat ptr of this row: (iteration, head, |dy|, |dx|)
		function automatic logic [CA-1:0] entry(input logic [AB-1:0] ptr, input int unsigned l);
			automatic logic [QB-1:0]  k = QB'(ptr*PE + l);
			automatic logic [SB-1:0]  yk = k[QB-1:SB];
			automatic logic [SB-1:0]  xk = k[SB-1:0];
			automatic logic [SB-1:0]  dy = yq > yk ? yq - yk : yk - yq;
			automatic logic [SB-1:0]  dx = xq > xk ? xq - xk : xk - xq;
			return  CA'(set_base(int'(iter))) + CA'(HEADS > 1 ? {Head, dy, dx} : {dy, dx});
		endfunction : entry
		if(!BIAS_RAM) begin : genRom  // per lane an asynchronous LUT ROM
			logic [BB-1:0]  Bias[CT];
			initial  if(BIAS_FILE != "")  $readmemh(BIAS_FILE, Bias);
			always_comb begin
				for(int unsigned  l = 0; l < PE; l++)  BiasQ[l*BB +: BB] = Bias[entry(Ptr, l)];
			end
		end : genRom
		else begin : genRam  // per two lanes a copy read at two addresses through registers: a dual-port block RAM
			uwire [AB-1:0]  next = accept && Ptr != AB'(BEATS-1) ? Ptr + AB'(1) : Ptr;
			for(genvar  c = 0; c < (PE+1)/2; c++) begin : genCopy
				(* rom_style = "block" *)
				logic [BB-1:0]  Bias[CT];
				initial  if(BIAS_FILE != "")  $readmemh(BIAS_FILE, Bias);
				logic [BB-1:0]  Q0;
				always_ff @(posedge clk)  Q0 <= Bias[entry(next, 2*c)];
				assign	BiasQ[2*c*BB +: BB] = Q0;
				if(2*c+1 < PE) begin : genSecond
					logic [BB-1:0]  Q1;
					always_ff @(posedge clk)  Q1 <= Bias[entry(next, 2*c+1)];
					assign	BiasQ[(2*c+1)*BB +: BB] = Q1;
				end : genSecond
			end : genCopy
		end : genRam
	end : genCompactBias
	else begin : genNoBias
		assign  BiasQ = '0;
	end : genNoBias

	// u per lane of the input beat, beat maximum
	logic [PE*UB-1:0]  u_beat;
	logic signed [UB-1:0]  beat_max;
	always_comb begin
		u_beat = '0;
		beat_max = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [IN_BITS-1:0]  raw = i_tdata[l*IN_BITS +: IN_BITS];
			automatic logic signed [UB+P-1:0]  a = IN_SIGNED? (UB+P)'($signed(raw)) : (UB+P)'($signed({1'b0, raw}));
			automatic logic signed [UB+P-1:0]  b = ROWS > 0 ? (UB+P)'($signed(BiasQ[l*BB +: BB])) : '0;
			automatic logic signed [UB+P-1:0]  t = a * (UB+P)'($signed({1'b0, MB'(mult)})) + b + ((UB+P)'(1) <<< (P-1));
			automatic logic signed [UB+P-1:0]  u = t >>> P;
			u_beat[l*UB +: UB] = u[UB-1:0];
			if(l == 0 || $signed(u[UB-1:0]) > beat_max)  beat_max = u[UB-1:0];
		end
	end

	// the row counters advance when a row has been received (PIPELINED) or sent (not): row_done
	uwire  row_done;
	always_ff @(posedge clk) begin
		if(rst) begin
			RowBase <= '0;
			Head <= '0;
			Query <= '0;
			Iter <= '0;
			Row <= '0;
		end
		else if(row_done) begin
			if(ROWS > 0)  RowBase <= (RowBase + BA'(BEATS) == BA'(NBW)) ? '0 : RowBase + BA'(BEATS);
			if(SIDE > 0) begin
				Query <= Query + 1;  // N = 2^QB: wraps to the next head's first query
				if(Query == QB'(N-1))  Head <= (Head == HB'(set_heads(int'(iter)) - 1)) ? '0 : Head + 1;
			end
			if(Row == TB'(TOKENS-1)) begin
				Row <= '0;
				Iter <= Iter == IB'(ITERS-1) ? '0 : Iter + 1;
			end
			else  Row <= Row + 1;
		end
	end

	// ---- exponent phase, shared arithmetic: e per lane of a buffered u beat against the row's maximum ----
	uwire [PE*UB-1:0]  ex_u;              // the u beat read
	uwire signed [UB-1:0]  ex_max;        // its row's maximum
	logic [PE*(E+1)-1:0]  e_beat;
	logic [SSB-1:0]  beat_sum;
	always_comb begin
		e_beat = '0;
		beat_sum = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [UB-1:0]  v = ex_max - $signed(ex_u[l*UB +: UB]);
			automatic logic [UB-1:0]  q = v >> G;
			automatic logic [E:0]  t = Exp[v[G-1:0]];
			automatic logic [E:0]  e = q > UB'(E) ? '0 : t >> q;
			e_beat[l*(E+1) +: E+1] = e;
			beat_sum += SSB'(e);
		end
	end

	// ---- output phase, shared arithmetic: y per lane of a buffered e beat and its row's RC ----
	uwire [PE*(E+1)-1:0]  out_e;
	uwire [KB-1:0]  out_rc;
	always_comb begin
		o_tdata = '0;
		for(int unsigned  l = 0; l < PE; l++) begin
			automatic logic [XB-1:0]  x = XB'(out_e[l*(E+1) +: E+1]) * XB'(out_rc);
			automatic logic [XB-1:0]  y = (x + (XB'(1) << (W-1))) >> W;
			automatic logic [XB-1:0]  ymax = (XB'(1) << OUT_BITS) - 1;
			automatic logic [XB-1:0]  c = y > ymax ? ymax : y;
			o_tdata[l*OUT_BITS +: OUT_BITS] = c[OUT_BITS-1:0];
		end
	end

	if(!PIPELINED) begin : genSerial
		typedef enum logic [2:0] { IN, EXPO, DIV, OUT } state_t;
		state_t  State = IN;

		logic [PE*UB-1:0]  Buf[BEATS];       // u, then e (low E+1 bits of each lane's entry)
		logic signed [UB-1:0]  Max = '0;
		logic [SSB-1:0]  Sum = '0;
		logic [KB-1:0]  Quot = '0;
		logic [SSB:0]  Rem = '0;
		int  DivBit = 0;
		uwire [63:0]  kk = k_of(iter);   // the row in flight is the row received

		uwire [PE*UB-1:0]  rd = Buf[Ptr];
		assign	ex_u = rd;
		assign	ex_max = Max;
		for(genvar  l = 0; l < PE; l++) begin : genOutE
			assign	out_e[l*(E+1) +: E+1] = rd[l*UB +: E+1];
		end : genOutE
		assign	out_rc = Quot;

		assign	accept = State == IN && i_tvalid && i_tready;
		assign	i_tready = State == IN && Primed;
		assign	o_tvalid = State == OUT;
		assign	row_done = State == OUT && o_tready && Ptr == AB'(BEATS-1);

		// one step of the restoring division K / Sum, most significant quotient bit first
		uwire [SSB:0]  rem_shift = {Rem[SSB-1:0], kk[DivBit]};
		uwire  fits = rem_shift >= {1'b0, Sum};

		always_ff @(posedge clk) begin
			if(rst) begin
				State <= IN;
				Ptr <= '0;
				Primed <= !PRIME;
			end
			else begin
				unique case(State)
				IN: if(!Primed)  Primed <= 1;
				else if(i_tvalid) begin
					Buf[Ptr] <= u_beat;
					if(Ptr == 0 || beat_max > Max)  Max <= beat_max;
					if(Ptr == AB'(BEATS-1)) begin
						Ptr <= '0;
						Sum <= '0;
						Primed <= !PRIME;
						State <= EXPO;
					end
					else  Ptr <= Ptr + 1;
				end
				EXPO: begin
					for(int unsigned  l = 0; l < PE; l++)  Buf[Ptr][l*UB +: UB] <= UB'(e_beat[l*(E+1) +: E+1]);
					Sum <= Sum + beat_sum;
					if(Ptr == AB'(BEATS-1)) begin
						Ptr <= '0;
						Rem <= '0;
						Quot <= '0;
						DivBit <= KB - 1;
						State <= DIV;
					end
					else  Ptr <= Ptr + 1;
				end
				DIV: begin
					Rem <= fits ? rem_shift - {1'b0, Sum} : rem_shift;
					Quot[DivBit] <= fits;
					DivBit <= DivBit - 1;
					if(DivBit == 0)  State <= OUT;
				end
				OUT: if(o_tready) begin
					if(Ptr == AB'(BEATS-1)) begin
						Ptr <= '0;
						State <= IN;
					end
					else  Ptr <= Ptr + 1;
				end
				default:  State <= IN;
				endcase
			end
		end
	end : genSerial
	else begin : genPipelined
		// u buffers: the input phase writes slot UIn, the exponent phase reads slot UEx
		logic [PE*UB-1:0]  UBuf[2*BEATS];
		logic [1:0]  UFull = '0;
		logic  UIn = 0;
		logic  UEx = 0;
		logic signed [UB-1:0]  UMax[2];
		logic [IB-1:0]  UIter[2];
		logic signed [UB-1:0]  RunMax = '0;   // maximum of the received beats of this row

		// e ring: the exponent phase fills slot EHead, the output phase empties slot ETail (rows in order)
		logic [PE*(E+1)-1:0]  EBuf[NS*BEATS];
		logic [SLB-1:0]  EHead = '0;
		logic [SLB-1:0]  ETail = '0;
		logic [SLB:0]  EUsed = '0;          // slots taken (from a row's first exponent beat to its last output)
		logic [AB-1:0]  ExPtr = '0;
		logic [SSB-1:0]  Sum = '0;
		logic [QN-1:0]  Quot[NS];           // RC of each slot's row, valid once QReady
		logic [NS-1:0]  QReady = '0;
		logic [AB-1:0]  OPtr = '0;

		// the divider: stage s holds a row's sum, remainder, the quotient bits found, its parameter set and slot
		logic [DS:0]  DV = '0;
		logic [SSB:0]  DRem[DS+1];
		logic [SSB-1:0]  DSum[DS+1];
		logic [QN-1:0]  DQuot[DS+1];
		logic [IB-1:0]  DIter[DS+1];
		logic [SLB-1:0]  DSlot[DS+1];

		assign	i_tready = Primed && !UFull[UIn];
		assign	accept = i_tvalid && i_tready;
		assign	row_done = accept && Ptr == AB'(BEATS-1);

		uwire  ex_go = UFull[UEx] && (ExPtr != 0 || EUsed < (SLB+1)'(NS));
		uwire  ex_last = ex_go && ExPtr == AB'(BEATS-1);
		assign	ex_u = UBuf[UEx ? BEATS + int'(ExPtr) : int'(ExPtr)];
		assign	ex_max = UMax[UEx];
		uwire [SSB-1:0]  row_sum = (ExPtr == 0 ? '0 : Sum) + beat_sum;

		assign	o_tvalid = QReady[ETail];
		assign	out_e = EBuf[EA'(ETail*BEATS + OPtr)];
		assign	out_rc = KB'(Quot[ETail]);
		uwire  out_last = o_tvalid && o_tready && OPtr == AB'(BEATS-1);

		always_ff @(posedge clk) begin
			if(rst) begin
				Ptr <= '0;
				Primed <= !PRIME;
				UFull <= '0;
				UIn <= 0;
				UEx <= 0;
				EHead <= '0;
				ETail <= '0;
				EUsed <= '0;
				ExPtr <= '0;
				QReady <= '0;
				OPtr <= '0;
				DV <= '0;
			end
			else begin
				// input phase
				if(!Primed)  Primed <= 1;
				else if(accept) begin
					UBuf[UIn ? BEATS + int'(Ptr) : int'(Ptr)] <= u_beat;
					if(Ptr == 0 || beat_max > RunMax)  RunMax <= beat_max;
					if(Ptr == AB'(BEATS-1)) begin
						UMax[UIn] <= Ptr == 0 || beat_max > RunMax ? beat_max : RunMax;
						UIter[UIn] <= iter;
						UFull[UIn] <= 1;
						UIn <= !UIn;
						Ptr <= '0;
						Primed <= !PRIME;
					end
					else  Ptr <= Ptr + 1;
				end

				// exponent phase
				if(ex_go) begin
					EBuf[EA'(EHead*BEATS + ExPtr)] <= e_beat;
					Sum <= row_sum;
					if(ex_last) begin
						UFull[UEx] <= 0;
						UEx <= !UEx;
						EHead <= EHead == SLB'(NS-1) ? '0 : EHead + 1;
						ExPtr <= '0;
					end
					else  ExPtr <= ExPtr + 1;
				end
				EUsed <= EUsed + (SLB+1)'(ex_go && ExPtr == 0) - (SLB+1)'(out_last);

				// divider: a row enters with the top E bits of K as its remainder (below S: no quotient bits)
				DV[0] <= ex_last;
				DSum[0] <= row_sum;
				DIter[0] <= UIter[UEx];
				DSlot[0] <= EHead;
				DQuot[0] <= '0;
				begin
					automatic logic [63:0]  k = k_of(UIter[UEx]);
					DRem[0] <= (SSB+1)'(k[KB-1:0] >> QN);
				end
				for(int unsigned  s = 0; s < DS; s++) begin
					automatic logic [63:0]  k = k_of(DIter[s]);
					automatic logic [SSB:0]  r = DRem[s];
					automatic logic [QN-1:0]  q = DQuot[s];
					for(int unsigned  b = 0; b < DSB; b++) begin
						if(s*DSB + b < QN) begin
							automatic int unsigned  idx = QN - 1 - (s*DSB + b);
							automatic logic  fits;
							r = {r[SSB-1:0], k[idx]};
							fits = r >= {1'b0, DSum[s]};
							if(fits)  r = r - {1'b0, DSum[s]};
							q = (q << 1) | QN'(fits);
						end
					end
					DV[s+1] <= DV[s];
					DRem[s+1] <= r;
					DQuot[s+1] <= q;
					DSum[s+1] <= DSum[s];
					DIter[s+1] <= DIter[s];
					DSlot[s+1] <= DSlot[s];
				end
				if(DV[DS]) begin
					Quot[DSlot[DS]] <= DQuot[DS];
					QReady[DSlot[DS]] <= 1;
				end

				// output phase
				if(o_tvalid && o_tready) begin
					if(out_last) begin
						QReady[ETail] <= 0;
						ETail <= ETail == SLB'(NS-1) ? '0 : ETail + 1;
						OPtr <= '0;
					end
					else  OPtr <= OPtr + 1;
				end
			end
		end
	end : genPipelined

endmodule : int_softmax
