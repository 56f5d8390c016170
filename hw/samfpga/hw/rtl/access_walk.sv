// Access walk: the address generator of the engine's DMAs (access_reader.sv, access_writer.sv). For a frame it
// issues one segment per run of an affine loop nest (samfpga.hw.sim.dma_access.Access, in bytes): RUN bytes at
// BASE + sum_k i_k * STRIDE_k, i_k < COUNT_k over six levels (0 outermost, 5 innermost; an unused level has count 1),
// level 5 fastest. The walk keeps the address of every level's current iteration, so each step is one adder and
// needs no multiplier.
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !walking). Bad configuration (run or a count
// zero; with ALIGNED, base, run or a stride not on whole AXI_DW/8-byte beats): `err_cfg` is set (until the next
// start) and no segment is issued. SIZE = 1: before the first segment the walk multiplies out the frame's bytes
// (RUN x the counts, one level per cycle) and pulses `sized` with `size` valid (a writer's input length).
//
// TAIL = 1 (a writer whose input holds bytes no run takes: a unit's outputs padded to whole folds): after the last
// run of each iteration of level cfg_tail_level (every run at level 5), a tail segment of cfg_tail bytes at
// cfg_tail_addr (a scratch area the host sets aside); cfg_tail = 0: none. `size` then counts the tails' bytes too
// (cfg_tail x the counts of levels 0 .. cfg_tail_level, multiplied out after the runs', one level per cycle). With
// ALIGNED the tails too are whole beats at a beat-aligned address (else bad configuration).

module access_walk #(
	int unsigned  AXI_AW = 32,
	int unsigned  BEAT_BYTES = 8,	// AXI_DW / 8 (ALIGNED's rule)
	int unsigned  RUN_BITS = 32,
	int unsigned  COUNT_BITS = 16,
	int unsigned  STRIDE_BITS = 32,
	int unsigned  SIZE_BITS = 48,
	bit  ALIGNED = 0,
	bit  SIZE = 0,
	bit  TAIL = 0
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [AXI_AW-1:0]  cfg_base,
	input	logic [RUN_BITS-1:0]  cfg_run,
	input	logic [COUNT_BITS-1:0]  cfg_count[6],
	input	logic [STRIDE_BITS-1:0]  cfg_stride[6],
	input	logic [RUN_BITS-1:0]  cfg_tail,	// TAIL: bytes of each tail segment (0: none)
	input	logic [AXI_AW-1:0]  cfg_tail_addr,	// TAIL: the tails' address
	input	logic [2:0]  cfg_tail_level,	// TAIL: a tail after each iteration of this level (5: after every run)
	output	logic  walking,	// from the start until the last segment is taken
	output	logic  err_cfg,
	output	logic  sized,	// SIZE: one cycle, `size` valid (before the first segment)
	output	logic [SIZE_BITS-1:0]  size,

	output	logic  seg_valid,
	input	logic  seg_ready,
	output	logic [AXI_AW-1:0]  seg_addr,
	output	logic [RUN_BITS-1:0]  seg_bytes,
	output	logic  seg_last	// the frame's last segment
);
	localparam int unsigned  LEVELS = 6;

	// a stride as an address increment (sign-extended, or cut to the address width)
	function automatic logic [AXI_AW-1:0] step(input logic [STRIDE_BITS-1:0] s);
		return AXI_AW'($signed(s));
	endfunction

	typedef enum logic [1:0] { IDLE, MUL, RUN } state_t;
	logic [RUN_BITS-1:0]  TailBytes;
	logic [AXI_AW-1:0]  TailAddr;
	logic [2:0]  TailLvl;
	logic  InTail = 0;	// the tail segment is on seg_*
	logic  TailPhase = 0;	// MUL: multiplying out the tails' bytes
	logic  Summed = 0;	// MUL: the tails' bytes added
	logic [SIZE_BITS-1:0]  TailSize;
	state_t  State = IDLE;
	logic [RUN_BITS-1:0]  RunBytes;
	logic [COUNT_BITS-1:0]  Count[LEVELS], Cnt[LEVELS];
	logic [STRIDE_BITS-1:0]  Stride[LEVELS];
	logic [AXI_AW-1:0]  Addr[LEVELS];	// BASE + sum_{j <= k} i_j * stride_j: a segment starts at Addr[5]
	logic [SIZE_BITS-1:0]  Size;
	logic [2:0]  Lvl;	// MUL: the level multiplied in this cycle
	logic  ErrCfg = 0;

	// the innermost level not at its last iteration (none: this segment is the frame's last)
	logic  more;
	int unsigned  adv;
	always_comb begin
		more = 0;
		adv = 0;
		for(int unsigned  k = 0; k < LEVELS; k++) begin
			if(Cnt[k] + 1 != Count[k]) begin
				more = 1;
				adv = k;
			end
		end
	end
	uwire [AXI_AW-1:0]  next_addr = Addr[adv] + step(Stride[adv]);

	logic  bad;
	always_comb begin
		bad = cfg_run == 0;
		for(int unsigned  k = 0; k < LEVELS; k++) begin
			if(cfg_count[k] == 0)  bad = 1;
			if(ALIGNED && (cfg_stride[k] & STRIDE_BITS'(BEAT_BYTES - 1)) != 0)  bad = 1;
		end
		if(ALIGNED && ((cfg_base & AXI_AW'(BEAT_BYTES - 1)) != 0 || (cfg_run & RUN_BITS'(BEAT_BYTES - 1)) != 0))
			bad = 1;
		if(TAIL && ALIGNED && ((cfg_tail_addr & AXI_AW'(BEAT_BYTES - 1)) != 0
				|| (cfg_tail & RUN_BITS'(BEAT_BYTES - 1)) != 0))
			bad = 1;
	end

	assign	walking = State != IDLE;
	assign	seg_valid = State == RUN;
	uwire [SIZE_BITS-1:0]  mul_out = (TAIL && TailPhase? TailSize : Size) * SIZE_BITS'(Count[Lvl]);

	// a tail follows this run: the next advance is at the tail's level or outside it, or the frame ends
	uwire  tail_next = TAIL && !InTail && TailBytes != 0 && (!more || adv <= 32'(TailLvl));
	assign	seg_addr = TAIL && InTail? TailAddr : Addr[LEVELS-1];
	assign	seg_bytes = TAIL && InTail? TailBytes : RunBytes;
	assign	seg_last = !more && !tail_next;
	assign	err_cfg = ErrCfg;
	assign	size = Size;

	always_ff @(posedge clk) begin
		sized <= 0;
		if(rst) begin
			State <= IDLE;
			ErrCfg <= 0;
		end
		else unique case(State)
		IDLE: if(start) begin
			RunBytes <= cfg_run;
			for(int unsigned  k = 0; k < LEVELS; k++) begin
				Count[k] <= cfg_count[k];
				Stride[k] <= cfg_stride[k];
				Cnt[k] <= 0;
				Addr[k] <= cfg_base;
			end
			Size <= SIZE_BITS'(cfg_run);
			TailBytes <= TAIL? cfg_tail : '0;
			TailAddr <= cfg_tail_addr;
			TailLvl <= cfg_tail_level;
			TailSize <= SIZE_BITS'(TAIL? cfg_tail : '0);
			TailPhase <= 0;
			Summed <= 0;
			InTail <= 0;
			Lvl <= 0;
			ErrCfg <= bad;
			State <= bad? IDLE : SIZE? MUL : RUN;
		end
		MUL: begin	// one multiplier: the runs' bytes, then (TAIL) the tails' over levels 0 .. cfg_tail_level, the sum
			Lvl <= Lvl + 1;
			if(!TailPhase) begin
				Size <= mul_out;
				if(Lvl == 3'(LEVELS - 1)) begin
					Lvl <= 0;
					if(TAIL)  TailPhase <= 1;
					else begin
						State <= RUN;
						sized <= 1;
					end
				end
			end
			else if(!Summed) begin
				if(Lvl <= TailLvl)  TailSize <= mul_out;
				if(Lvl == 3'(LEVELS - 1))  Summed <= 1;
			end
			else begin
				Size <= Size + TailSize;
				State <= RUN;
				sized <= 1;
			end
		end
		RUN: if(seg_ready) begin
			if(tail_next)  InTail <= 1;	// the counters stay: the tail belongs to this run
			else if(!more) begin
				State <= IDLE;
				InTail <= 0;
			end
			else begin
				InTail <= 0;
				Cnt[adv] <= Cnt[adv] + 1;
				for(int unsigned  k = 0; k < LEVELS; k++) begin
					if(k >= adv)  Addr[k] <= next_addr;
					if(k > adv)  Cnt[k] <= 0;
				end
			end
		end
		default: ;
		endcase
	end
endmodule
