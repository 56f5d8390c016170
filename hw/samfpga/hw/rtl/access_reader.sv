// Access reader: the layer-sequential engine's read DMA. It reads a stored tensor in the order a consumer needs, as
// an affine loop nest (samfpga.hw.sim.dma_access.Access, in bytes): runs of `run` contiguous bytes starting at
// BASE + sum_k i_k * stride_k for i_k < count_k over six loop levels (level 0 outermost, level 5 innermost; a level
// the access does not use has count 1), and emits the whole frame as one AXI-Stream packet, packed STREAM_W/8
// bytes per beat (byte 0 in tdata[7:0]), tlast on its last beat (tkeep may be partial there).
//
// The walk is access_walk.sv; every run is one segment of segment_reader.sv (INCR bursts on AXI_DW-aligned beats, split at 4 KiB and
// MAX_BURST, byte realignment: no alignment is required of BASE, the run or the strides, which may be negative).
// The walk issues at most one segment per burst request, so short runs cost about two cycles each on the AR side;
// the bytes read over AXI are each run rounded out to whole beats.
//
// Configuration (cfg_*) is sampled at `start` (a one-cycle pulse while !busy). err[0]: an R beat with an error
// response (sticky until reset); err[1]: bad configuration (run or a count zero, or with ALIGNED base, run or a
// stride not on whole beats): the frame is dropped (sticky until the next start).

module access_reader #(
	int unsigned  AXI_DW = 64,	// AXI data width (bits, power of 2, >= 8)
	int unsigned  AXI_AW = 32,
	int unsigned  STREAM_W = 32,	// output stream width (bits, multiple of 8)
	int unsigned  MAX_BURST = 16,	// beats per read burst (<= 256)
	int unsigned  RUN_BITS = 32,	// width of the run (bytes)
	int unsigned  COUNT_BITS = 16,	// width of a loop count
	int unsigned  STRIDE_BITS = 32,	// width of a loop stride (bytes, two's complement)
	int unsigned  DQ_DEPTH = 8,	// segment descriptors in flight between the AR and R sides (power of 2)
	// 1: base, run and strides on whole AXI beats (with STREAM_W = AXI_DW): R beats pass straight to the stream,
	// no realignment buffer (a frame breaking the rule is refused: err[1])
	bit  ALIGNED = 0
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
	output	logic  busy,
	output	logic [1:0]  err,

	output	logic  m_axi_arid,
	output	logic [AXI_AW-1:0]  m_axi_araddr,
	output	logic [7:0]  m_axi_arlen,
	output	logic [2:0]  m_axi_arsize,
	output	logic [1:0]  m_axi_arburst,
	output	logic [3:0]  m_axi_arcache,
	output	logic [2:0]  m_axi_arprot,
	output	logic  m_axi_arvalid,
	input	logic  m_axi_arready,
	input	logic  m_axi_rid,
	input	logic [AXI_DW-1:0]  m_axi_rdata,
	input	logic [1:0]  m_axi_rresp,
	input	logic  m_axi_rlast,
	input	logic  m_axi_rvalid,
	output	logic  m_axi_rready,

	output	logic [STREAM_W-1:0]  m_axis_tdata,
	output	logic [STREAM_W/8-1:0]  m_axis_tkeep,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	uwire  walking, err_cfg, seg_valid, seg_ready, seg_last, seg_busy, err_resp;
	uwire [AXI_AW-1:0]  seg_addr;
	uwire [RUN_BITS-1:0]  seg_bytes;
	assign	busy = walking || seg_busy;

	access_walk #(
		.AXI_AW(AXI_AW), .BEAT_BYTES(AXI_DW / 8), .RUN_BITS(RUN_BITS), .COUNT_BITS(COUNT_BITS),
		.STRIDE_BITS(STRIDE_BITS), .ALIGNED(ALIGNED), .SIZE(0)
	) walk (
		.clk, .rst,
		.start(start && !busy), .cfg_base, .cfg_run,
		.cfg_count('{cfg_count0, cfg_count1, cfg_count2, cfg_count3, cfg_count4, cfg_count5}),
		.cfg_stride('{cfg_stride0, cfg_stride1, cfg_stride2, cfg_stride3, cfg_stride4, cfg_stride5}),
		.cfg_tail('0), .cfg_tail_addr('0), .cfg_tail_level('0),
		.walking, .err_cfg, .sized(), .size(),
		.seg_valid, .seg_ready, .seg_addr, .seg_bytes, .seg_last
	);

	segment_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(STREAM_W), .MAX_BURST(MAX_BURST), .SEG_BITS(RUN_BITS),
		.DQ_DEPTH(DQ_DEPTH), .ALIGNED(ALIGNED)
	) seg (
		.clk, .rst,
		.seg_valid, .seg_ready, .seg_addr, .seg_bytes,
		.seg_last,	// the frame is one packet
		.busy(seg_busy), .err_resp,
		.m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arcache, .m_axi_arprot,
		.m_axi_arvalid, .m_axi_arready,
		.m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready,
		.m_axis_tdata, .m_axis_tkeep, .m_axis_tlast, .m_axis_tvalid, .m_axis_tready
	);

	assign	err = {err_cfg, err_resp};
endmodule
