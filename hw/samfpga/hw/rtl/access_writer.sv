// Access writer: the layer-sequential engine's write DMA, the mirror of access_reader.sv. It takes a unit's output,
// a byte stream packed STREAM_W/8 bytes per beat (byte 0 in tdata[7:0]; the frame's last beat may be partial; tkeep
// and tlast are not inspected: the frame's length is RUN x the counts), and writes it to DDR in the order of an
// affine loop nest (samfpga.hw.sim.dma_access.Access, in bytes): runs of RUN bytes at BASE + sum_k i_k * stride_k,
// i_k < count_k over six levels (level 0 outermost; an unused level has count 1).
//
// The walk is access_walk.sv (SIZE = 1: the frame's bytes multiplied out in six cycles after the start); every run
// is one segment of segment_writer.sv (INCR bursts on AXI_DW-aligned beats, split at 4 KiB and MAX_BURST, partial
// WSTRB on a run's first and last beat: no alignment is required of BASE, the run or the strides, which may be
// negative, and bytes outside the runs are never written; W beats may precede their AW). Runs that overlap are
// written in order (the later wins).
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). busy stays high until the B
// responses of all the frame's bursts have arrived; `done` pulses for one cycle when busy falls. err[0]: a B
// response with an error (sticky until reset); err[1]: bad configuration (run or a count zero, or with ALIGNED base,
// run or a stride not on whole beats): the frame is dropped and no input is taken (done still pulses).
// `sized` pulses when the walk has counted the frame's bytes (`size`: the runs' and the tails', the input it takes), a
// few cycles after the start: what a re-cut in front of the writer needs to end the frame (token_pack.sv).

module access_writer #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// input stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per write burst (<= 256)
	int unsigned  RUN_BITS = 32,	// width of the run (bytes)
	int unsigned  COUNT_BITS = 16,	// width of a loop count
	int unsigned  STRIDE_BITS = 32,	// width of a loop stride (bytes, two's complement)
	int unsigned  SIZE_BITS = 48,	// width of the frame's byte count
	int unsigned  BQ_DEPTH = 8,	// bursts issued on AW whose W beats are not all sent (power of 2)
	int unsigned  B_BITS = 8,	// counter of bursts awaiting their B response
	// 1: base, run and strides on whole AXI beats (with STREAM_W = AXI_DW): input beats pass straight to W, all
	// strobes set (a frame breaking the rule is refused: err[1])
	bit  ALIGNED = 0,
	// 1: after each iteration of loop level cfg_tail_level a tail of cfg_tail input bytes goes to cfg_tail_addr, a
	// scratch area (access_walk.sv: a unit's outputs padded to whole folds, whose padding no run takes)
	bit  TAIL = 0
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [AXI_AW-1:0]  cfg_base,
	input	logic [RUN_BITS-1:0]  cfg_run,
	input	logic [COUNT_BITS-1:0]  cfg_count0,
	input	logic [COUNT_BITS-1:0]  cfg_count1,
	input	logic [COUNT_BITS-1:0]  cfg_count2,
	input	logic [COUNT_BITS-1:0]  cfg_count3,
	input	logic [COUNT_BITS-1:0]  cfg_count4,
	input	logic [COUNT_BITS-1:0]  cfg_count5,
	input	logic [STRIDE_BITS-1:0]  cfg_stride0,
	input	logic [STRIDE_BITS-1:0]  cfg_stride1,
	input	logic [STRIDE_BITS-1:0]  cfg_stride2,
	input	logic [STRIDE_BITS-1:0]  cfg_stride3,
	input	logic [STRIDE_BITS-1:0]  cfg_stride4,
	input	logic [STRIDE_BITS-1:0]  cfg_stride5,
	input	logic [RUN_BITS-1:0]  cfg_tail,
	input	logic [AXI_AW-1:0]  cfg_tail_addr,
	input	logic [2:0]  cfg_tail_level,
	output	logic  busy,
	output	logic  done,
	output	logic [1:0]  err,
	output	logic  sized,
	output	logic [SIZE_BITS-1:0]  size,

	input	logic [STREAM_W-1:0]  s_axis_tdata,
	input	logic [STREAM_W/8-1:0]  s_axis_tkeep,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic  m_axi_awid,
	output	logic [AXI_AW-1:0]  m_axi_awaddr,
	output	logic [7:0]  m_axi_awlen,
	output	logic [2:0]  m_axi_awsize,
	output	logic [1:0]  m_axi_awburst,
	output	logic [3:0]  m_axi_awcache,
	output	logic [2:0]  m_axi_awprot,
	output	logic  m_axi_awvalid,
	input	logic  m_axi_awready,
	output	logic [AXI_DW-1:0]  m_axi_wdata,
	output	logic [AXI_DW/8-1:0]  m_axi_wstrb,
	output	logic  m_axi_wlast,
	output	logic  m_axi_wvalid,
	input	logic  m_axi_wready,
	input	logic  m_axi_bid,
	input	logic [1:0]  m_axi_bresp,
	input	logic  m_axi_bvalid,
	output	logic  m_axi_bready
);
	uwire  walking, err_cfg, seg_valid, seg_ready, seg_busy, err_resp;
	uwire [AXI_AW-1:0]  seg_addr;
	uwire [RUN_BITS-1:0]  seg_bytes;

	logic  BusyQ = 0;
	logic  Refused = 0;	// a refused start is busy for one cycle, so that done pulses
	assign	busy = walking || seg_busy || Refused;
	assign	done = BusyQ && !busy;
	always_ff @(posedge clk) begin
		if(rst) begin
			BusyQ <= 0;
			Refused <= 0;
		end
		else begin
			BusyQ <= busy;
			Refused <= start && !busy;
		end
	end

	access_walk #(
		.AXI_AW(AXI_AW), .BEAT_BYTES(AXI_DW / 8), .RUN_BITS(RUN_BITS), .COUNT_BITS(COUNT_BITS),
		.STRIDE_BITS(STRIDE_BITS), .SIZE_BITS(SIZE_BITS), .ALIGNED(ALIGNED), .SIZE(1), .TAIL(TAIL)
	) walk (
		.clk, .rst,
		.start(start && !busy), .cfg_base, .cfg_run,
		.cfg_count('{cfg_count0, cfg_count1, cfg_count2, cfg_count3, cfg_count4, cfg_count5}),
		.cfg_stride('{cfg_stride0, cfg_stride1, cfg_stride2, cfg_stride3, cfg_stride4, cfg_stride5}),
		.cfg_tail, .cfg_tail_addr, .cfg_tail_level,
		.walking, .err_cfg, .sized, .size,
		.seg_valid, .seg_ready, .seg_addr, .seg_bytes, .seg_last()
	);

	segment_writer #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(STREAM_W), .MAX_BURST(MAX_BURST), .SEG_BITS(RUN_BITS),
		.PKT_BITS(SIZE_BITS), .NPKT_BITS(1), .BQ_DEPTH(BQ_DEPTH), .B_BITS(B_BITS), .ALIGNED(ALIGNED)
	) seg (
		.clk, .rst,
		.in_go(sized), .in_pkt_bytes(size), .in_pkts(1'b1),
		.seg_valid, .seg_ready, .seg_addr, .seg_bytes,
		.busy(seg_busy), .err_resp,
		.s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
		.m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awcache, .m_axi_awprot,
		.m_axi_awvalid, .m_axi_awready,
		.m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
		.m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
	);

	assign	err = {err_cfg, err_resp};
endmodule
