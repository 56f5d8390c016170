// The image's window for the engine's first convolution (TinyViT's patch_embed.seq.0: 3 x 3, stride 2, padding 1,
// on the raw image): each pixel's C bytes through their channel's 256-entry table (the pixel input's normalisation
// folded into a threshold table, samfpga.hw.sim.engine_program's image table), then each output pixel's 3 x 3 x C
// patch in FINN's order (ky, kx, channel), zero where it reaches the top or left padding, as ceil(9 C / OUT_B)
// beats of OUT_B bytes (the GEMM unit's SIMD; zeros after the patch).
//
// A step: `start` (while !busy) samples the image's height and width (cfg_h even, cfg_w even up to W_MAX; else err,
// and the step does not start); the table then arrives on t_axis (C x 256 bytes, channel c's entry v at byte
// 256 c + v, TB bytes a beat, the last beat's bytes past the table ignored), written a byte a cycle (C x 256
// cycles; the next beat lands as the held one's last byte is written); then the image on s_axis, 2 pixels a beat in row-major order, each stored as 4 bytes (its C
// channels, then bytes the window ignores: the host stores the image that way, so that the reader's beats hold whole
// pixels). The output's last beat has tlast; busy falls after it.
// The table is a block RAM per pixel of a word and channel, read as a word is taken; the word is written into the
// rows the next cycle. Rows are kept by their role, in block RAMs of 2 pixels a word with the table applied: output row oy
// takes row 2 oy - 1 from T (its slot oy mod 4), row 2 oy from M and row 2 oy + 1 from B (slots oy mod 2); an odd
// row is written into B and, as the next output row's top row, into T. So each role's read address is its slot and
// the word, with no multiplexer between slots, and rows 2 oy + 2 and 2 oy + 3 arrive while row oy is produced.
// Output pixel ox is word ox of each role (columns 2 ox and 2 ox + 1) with the previous word's last pixel (column
// 2 ox - 1); the bottom and right padding is never reached (stride 2, even size). Free-running a step takes the
// table's C x 256 cycles, then max(the input's 2 pixels a cycle, the output's NB beats a pixel) per output row.

module image_window #(
	int unsigned  C = 3,	// bytes (channels) a pixel
	int unsigned  W_MAX = 64,	// the widest image, pixels (even)
	int unsigned  OUT_B = 16,	// bytes an output beat
	int unsigned  TB = 8,	// table bytes a t_axis beat
	int unsigned  DIM_BITS = 16
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	output	logic  busy,
	output	logic  err,	// the last start's configuration refused (until the next start)

	input	logic [8*TB-1:0]  t_axis_tdata,
	input	logic  t_axis_tvalid,
	output	logic  t_axis_tready,

	input	logic [63:0]  s_axis_tdata,	// 2 pixels of 4 bytes
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [8*OUT_B-1:0]  m_axis_tdata,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  PW = 8 * C;	// a pixel after the table
	localparam int unsigned  QW = 2 * PW;	// a word: 2 pixels
	localparam int unsigned  WQ = W_MAX / 2;	// words a row
	localparam int unsigned  QB = $clog2(WQ + 1);
	localparam int unsigned  AB = WQ > 1? $clog2(WQ) : 1;	// a word's address in a slot
	localparam int unsigned  SW = 1 << AB;	// words a slot
	localparam int unsigned  PB = 9 * C;	// patch bytes
	localparam int unsigned  NB = (PB + OUT_B - 1) / OUT_B;	// beats an output pixel
	localparam int unsigned  NBB = $clog2(NB + 1);
	localparam int unsigned  TN = C * 256;	// table bytes
	localparam int unsigned  TIB = $clog2(TN + 1);
	localparam int unsigned  THB = $clog2(TB + 1);

	if(W_MAX % 2 != 0)  $error("W_MAX must be even");
	if(C > 4)  $error("a pixel is stored in 4 bytes: C <= 4");

	typedef enum logic [1:0] { IDLE, TABLE, RUN } state_t;
	state_t  State = IDLE;
	logic [DIM_BITS-1:0]  H = 0;	// image rows
	logic [QB-1:0]  Wq = 0;	// words a row
	logic  Err = 0;
	assign	busy = State != IDLE;
	assign	err = Err;

	uwire  cfg_ok = cfg_h != 0 && !cfg_h[0] && cfg_w != 0 && !cfg_w[0] && cfg_w <= DIM_BITS'(W_MAX);

	// ---- the table: a byte a cycle into 2 x C block RAMs (a copy per pixel of a word and channel; read a cycle
	// after a word is taken, which is then written into the rows)
	logic [8*TB-1:0]  Th = '0;	// the held table beat
	logic [THB-1:0]  Tn = 0;	// its bytes not yet written
	logic [TIB-1:0]  Ti = 0;	// table bytes written
	assign	t_axis_tready = State == TABLE && Tn <= 1;
	uwire  t_we = State == TABLE && Tn != 0;
	uwire [7:0]  t_byte = Th[7:0];
	uwire [7:0]  t_addr = Ti[7:0];
	uwire [TIB-1:0]  t_chan = Ti >> 8;

	// ---- the rows: taken while the output rows that need their slots are done, written a cycle later
	logic [DIM_BITS-1:0]  Rs = 0;	// rows taken
	logic [AB-1:0]  Wqs = 0;	// words of row Rs taken
	logic [DIM_BITS-1:0]  Rin = 0;	// rows written
	logic [DIM_BITS-1:0]  Oy = 0;	// output row being produced
	assign	s_axis_tready = State == RUN && Rs < H && 32'(Rs) <= 32'(2 * Oy + 3);
	uwire  s_take = s_axis_tvalid && s_axis_tready;
	logic  Dv = 0;	// a word taken last cycle: its row and place
	logic [DIM_BITS-1:0]  Dr = 0;
	logic [AB-1:0]  Dq = 0;
	uwire [DIM_BITS-1:0]  rk = Dr >> 1;	// row Dr is row 2 k or 2 k + 1
	uwire  d_last = Dv && 32'(Dq) == 32'(Wq - 1);

	uwire [QW-1:0]  w_data;	// the word taken last cycle through the tables
	for(genvar  p = 0; p < 2; p++) begin : genPix
		for(genvar  c = 0; c < C; c++) begin : genChan
			(* ram_style = "block" *) logic [7:0]  Tab[256];
			logic [7:0]  Tq = '0;
			always_ff @(posedge clk) begin
				if(t_we && t_chan == TIB'(c))  Tab[t_addr] <= t_byte;
				if(s_take)  Tq <= Tab[s_axis_tdata[32*p + 8*c +: 8]];
			end
			assign	w_data[PW*p + 8*c +: 8] = Tq;
		end : genChan
	end : genPix

	// ---- the output: word Q (output pixel Q) of output row Oy, beat Bt of its NB
	logic [QB-1:0]  Q = 0;
	logic [NBB-1:0]  Bt = 0;
	logic  L = 0;	// the roles' read words are word Q's
	logic [3*PW-1:0]  Lp = '0;	// the previous word's last pixel of the top, middle and bottom rows
	uwire  row_ready = State == RUN && 32'(Rin) >= 32'(2 * Oy + 2);
	uwire  last_beat = Bt == NBB'(NB - 1);
	uwire  m_take = m_axis_tvalid && m_axis_tready;
	uwire  row_end = m_take && last_beat && Q == Wq - 1;
	uwire  first_read = row_ready && !L;
	uwire  next_read = m_take && last_beat && Q != Wq - 1;
	uwire  r_en = first_read || next_read;
	uwire [AB-1:0]  r_addr = first_read? '0 : AB'(Q + 1);

	// the roles' memories: T (4 slots) takes odd rows as the next output row's top, M even rows, B odd rows
	logic [QW-1:0]  Td = '0, Md = '0, Bd = '0;
	logic [QW-1:0]  Tm[4*SW], Mm[2*SW], Bm[2*SW];
	always_ff @(posedge clk) begin
		if(Dv && Dr[0]) begin
			Tm[{2'(rk + 1), Dq}] <= w_data;
			Bm[{rk[0], Dq}] <= w_data;
		end
		if(Dv && !Dr[0])  Mm[{rk[0], Dq}] <= w_data;
		if(r_en) begin
			Td <= Tm[{Oy[1:0], r_addr}];
			Md <= Mm[{Oy[0], r_addr}];
			Bd <= Bm[{Oy[0], r_addr}];
		end
	end
	uwire [QW-1:0]  top = Oy == 0? '0 : Td;
	uwire [3*QW-1:0]  rows = {Bd, Md, top};

	// the patch: (ky, kx, c): columns 2 Q - 1 (Lp), 2 Q, 2 Q + 1
	logic [8*PB-1:0]  patch;
	always_comb begin
		for(int unsigned  ky = 0; ky < 3; ky++)
			patch[3*PW*ky +: 3*PW] = {rows[QW*ky +: QW], Lp[PW*ky +: PW]};
	end
	uwire [8*NB*OUT_B-1:0]  padded = (8*NB*OUT_B)'(patch);
	if(NB == 1) begin : genOne
		assign	m_axis_tdata = padded;
	end : genOne
	else begin : genBeats
		assign	m_axis_tdata = padded[8*OUT_B*Bt +: 8*OUT_B];
	end : genBeats
	assign	m_axis_tvalid = State == RUN && L;
	assign	m_axis_tlast = last_beat && Q == Wq - 1 && Oy == H / 2 - 1;

	// the step: its size sampled with the start, the table, then the rows until the last output beat
	uwire  restart = State == IDLE && start && cfg_ok;
	always_ff @(posedge clk) begin
		if(rst) begin
			State <= IDLE;
			H <= 0;
			Wq <= 0;
			Err <= 0;
		end
		else case(State)
			IDLE: if(start) begin
				Err <= !cfg_ok;
				if(cfg_ok) begin
					State <= TABLE;
					H <= cfg_h;
					Wq <= QB'(cfg_w >> 1);
				end
			end
			TABLE: if(t_we && Ti == TIB'(TN - 1))  State <= RUN;
			RUN: if(row_end && Oy == H / 2 - 1)  State <= IDLE;
			default: State <= IDLE;
		endcase
	end

	// the counters: cleared by reset and by a step's start
	always_ff @(posedge clk) begin
		if(rst || restart) begin
			Th <= '0;
			Tn <= 0;
			Ti <= 0;
			Rs <= 0;
			Wqs <= 0;
			Rin <= 0;
			Dv <= 0;
			Dr <= 0;
			Dq <= 0;
			Oy <= 0;
			Q <= 0;
			Bt <= 0;
			L <= 0;
			Lp <= '0;
		end
		else begin
			// the table: a beat held, its bytes written one a cycle
			if(t_we)  Ti <= Ti + 1;
			if(t_axis_tvalid && t_axis_tready) begin
				Th <= t_axis_tdata;
				Tn <= THB'(TB);
			end
			else if(t_we) begin
				Th <= Th >> 8;
				Tn <= Tn - 1;
			end
			// the rows: a word taken, written the next cycle
			Dv <= s_take;
			if(s_take) begin
				Dr <= Rs;
				Dq <= Wqs;
				if(32'(Wqs) == 32'(Wq - 1)) begin
					Wqs <= 0;
					Rs <= Rs + 1;
				end
				else  Wqs <= Wqs + 1;
			end
			if(d_last)  Rin <= Rin + 1;
			// the output: beats of a pixel, words of a row, rows
			if(first_read)  L <= 1;
			if(m_take) begin
				Bt <= last_beat? '0 : Bt + 1;
				if(next_read) begin
					Q <= Q + 1;
					Lp <= {Bd[QW-PW +: PW], Md[QW-PW +: PW], top[QW-PW +: PW]};
				end
				if(row_end) begin
					Q <= 0;
					L <= 0;
					Lp <= '0;
					Oy <= Oy + 1;
				end
			end
		end
	end

endmodule : image_window
