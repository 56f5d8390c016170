// A rolled stage of N blocks on the project's own units, with its loop buffers in DDR: strip_reader -> token_batch_mvu
// -> strip_writer. The body is one token-batched linear layer (C -> C channels, requantised to 8 bits inside the
// unit, RQ = 1), the smallest body with the structure of the planner's rolled_batched units: per-block weights and
// requantisation parameters streamed from DDR at BASE + i*STRIDE, block i's input map read from one loop buffer and
// its output written to the other.
//
// Loop control is the host's (the ARM under PYNQ, or the cocotb bench): the token-batch unit is configured once per
// frame with N iterations of T = H*W tokens and fetches block i's weights by itself; for each block i the host
// starts the reader on the buffer holding block i's input and the writer on the other buffer, and waits for the
// writer's done (its last B response: the output is in DDR) before it starts block i + 1, whose reader reads what
// the writer just wrote. Map: H x W x C bytes (HWC raster, int8), read and written as `tiles` column strips without
// halo (a per-token layer needs none); the unit sees the tokens strip by strip and the writer puts them back in place.
//
// Stream widths are set so that the units' beats line up: the reader emits SIMD bytes per beat (one input beat of the
// unit, SF = C/SIMD beats per token, C a multiple of SIMD); the unit emits PE requantised bytes per beat (NF = C/PE
// beats per token), the writer's input width. The reader's tkeep / tlast are not needed by the unit (every strip is
// whole tokens) and the writer counts its bytes from its configuration.
//
// Three AXI4 masters, one per unit (m_axi_rd_*: the reader's reads, m_axi_wt_*: weight reads, m_axi_wr_*: the
// writer's writes); on a board an interconnect merges them onto the PS's HP port. Configuration ports as the units
// have them (docs/rolled_stage.md).

module rolled_stage #(
	int unsigned  C = 8,	// channels in and out (MW = MH of the body)
	int unsigned  SIMD = 4,
	int unsigned  PE = 2,
	int unsigned  B = 4,	// tokens per weight pass
	int unsigned  ACC_BITS = 24,
	int unsigned  AXI_DW = 64,
	int unsigned  AXI_AW = 32,
	int unsigned  MAX_BURST = 16,
	int unsigned  WFIFO_DEPTH = 32,
	int unsigned  CNT_BITS = 16,
	int unsigned  DIM_BITS = 16,
	int unsigned  PQ_DEPTH = 4,
	int unsigned  DOT = 1	// the body's dot products (token_batch_mvu.sv's DOT: 1 dot_chain.sv, 2 dot_pack.sv)
)(
	input	logic  clk,
	input	logic  rst,

	// the map (both loop buffers)
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	input	logic [DIM_BITS-1:0]  cfg_tiles,
	// reader: block i's input buffer
	input	logic  rd_start,
	input	logic [AXI_AW-1:0]  rd_base,
	output	logic  rd_busy,
	output	logic [1:0]  rd_err,
	// writer: block i's output buffer
	input	logic  wr_start,
	input	logic [AXI_AW-1:0]  wr_base,
	output	logic  wr_busy,
	output	logic  wr_done,
	output	logic [1:0]  wr_err,
	// token-batch unit: sampled with the first input beat of a frame (set before the first block's reader starts)
	input	logic [AXI_AW-1:0]  wt_base,
	input	logic [AXI_AW-1:0]  wt_stride,
	input	logic [CNT_BITS-1:0]  wt_iters,
	input	logic [CNT_BITS-1:0]  wt_tokens,
	output	logic [1:0]  wt_err,

	output	logic  m_axi_rd_arid,
	output	logic [AXI_AW-1:0]  m_axi_rd_araddr,
	output	logic [7:0]  m_axi_rd_arlen,
	output	logic [2:0]  m_axi_rd_arsize,
	output	logic [1:0]  m_axi_rd_arburst,
	output	logic [3:0]  m_axi_rd_arcache,
	output	logic [2:0]  m_axi_rd_arprot,
	output	logic  m_axi_rd_arvalid,
	input	logic  m_axi_rd_arready,
	input	logic  m_axi_rd_rid,
	input	logic [AXI_DW-1:0]  m_axi_rd_rdata,
	input	logic [1:0]  m_axi_rd_rresp,
	input	logic  m_axi_rd_rlast,
	input	logic  m_axi_rd_rvalid,
	output	logic  m_axi_rd_rready,

	output	logic  m_axi_wt_arid,
	output	logic [AXI_AW-1:0]  m_axi_wt_araddr,
	output	logic [7:0]  m_axi_wt_arlen,
	output	logic [2:0]  m_axi_wt_arsize,
	output	logic [1:0]  m_axi_wt_arburst,
	output	logic [3:0]  m_axi_wt_arcache,
	output	logic [2:0]  m_axi_wt_arprot,
	output	logic  m_axi_wt_arvalid,
	input	logic  m_axi_wt_arready,
	input	logic  m_axi_wt_rid,
	input	logic [AXI_DW-1:0]  m_axi_wt_rdata,
	input	logic [1:0]  m_axi_wt_rresp,
	input	logic  m_axi_wt_rlast,
	input	logic  m_axi_wt_rvalid,
	output	logic  m_axi_wt_rready,

	output	logic  m_axi_wr_awid,
	output	logic [AXI_AW-1:0]  m_axi_wr_awaddr,
	output	logic [7:0]  m_axi_wr_awlen,
	output	logic [2:0]  m_axi_wr_awsize,
	output	logic [1:0]  m_axi_wr_awburst,
	output	logic [3:0]  m_axi_wr_awcache,
	output	logic [2:0]  m_axi_wr_awprot,
	output	logic  m_axi_wr_awvalid,
	input	logic  m_axi_wr_awready,
	output	logic [AXI_DW-1:0]  m_axi_wr_wdata,
	output	logic [AXI_DW/8-1:0]  m_axi_wr_wstrb,
	output	logic  m_axi_wr_wlast,
	output	logic  m_axi_wr_wvalid,
	input	logic  m_axi_wr_wready,
	input	logic  m_axi_wr_bid,
	input	logic [1:0]  m_axi_wr_bresp,
	input	logic  m_axi_wr_bvalid,
	output	logic  m_axi_wr_bready
);

	localparam int unsigned  IN_W = SIMD * 8;
	localparam int unsigned  OUT_W = PE * 8;

	logic [IN_W-1:0]  x_tdata;
	logic  x_tvalid;
	logic  x_tready;
	logic [OUT_W-1:0]  y_tdata;
	logic  y_tvalid;
	logic  y_tready;

	strip_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(IN_W), .MAX_BURST(MAX_BURST), .DIM_BITS(DIM_BITS)
	) reader (
		.clk, .rst,
		.start(rd_start), .cfg_base(rd_base), .cfg_h, .cfg_w, .cfg_c(DIM_BITS'(C)), .cfg_tiles,
		.cfg_halo('0), .busy(rd_busy), .err(rd_err),
		.m_axi_arid(m_axi_rd_arid), .m_axi_araddr(m_axi_rd_araddr), .m_axi_arlen(m_axi_rd_arlen),
		.m_axi_arsize(m_axi_rd_arsize), .m_axi_arburst(m_axi_rd_arburst), .m_axi_arcache(m_axi_rd_arcache),
		.m_axi_arprot(m_axi_rd_arprot), .m_axi_arvalid(m_axi_rd_arvalid), .m_axi_arready(m_axi_rd_arready),
		.m_axi_rid(m_axi_rd_rid), .m_axi_rdata(m_axi_rd_rdata), .m_axi_rresp(m_axi_rd_rresp),
		.m_axi_rlast(m_axi_rd_rlast), .m_axi_rvalid(m_axi_rd_rvalid), .m_axi_rready(m_axi_rd_rready),
		.m_axis_tdata(x_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(x_tvalid), .m_axis_tready(x_tready)
	);

	token_batch_mvu #(
		.MW(C), .MH(C), .SIMD(SIMD), .PE(PE), .A_BITS(8), .W_BITS(8), .ACC_BITS(ACC_BITS), .A_SIGNED(1),
		.W_SIGNED(1), .B(B), .AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .MAX_BURST(MAX_BURST), .WFIFO_DEPTH(WFIFO_DEPTH),
		.CNT_BITS(CNT_BITS), .RQ(1), .OUT_BITS(8), .OUT_SIGNED(1), .PQ_DEPTH(PQ_DEPTH), .DOT(DOT)
	) body (
		.clk, .rst,
		.cfg_base(wt_base), .cfg_stride(wt_stride), .cfg_iters(wt_iters), .cfg_tokens(wt_tokens),
		.cfg_sf('0), .cfg_nf('0), .cfg_batch('0), .cfg_raw(1'b0), .cfg_unsigned(1'b0), .err(wt_err),	// shape: the parameters' (RT_SHAPE = 0)
		.m_axi_arid(m_axi_wt_arid), .m_axi_araddr(m_axi_wt_araddr), .m_axi_arlen(m_axi_wt_arlen),
		.m_axi_arsize(m_axi_wt_arsize), .m_axi_arburst(m_axi_wt_arburst), .m_axi_arcache(m_axi_wt_arcache),
		.m_axi_arprot(m_axi_wt_arprot), .m_axi_arvalid(m_axi_wt_arvalid), .m_axi_arready(m_axi_wt_arready),
		.m_axi_rid(m_axi_wt_rid), .m_axi_rdata(m_axi_wt_rdata), .m_axi_rresp(m_axi_wt_rresp),
		.m_axi_rlast(m_axi_wt_rlast), .m_axi_rvalid(m_axi_wt_rvalid), .m_axi_rready(m_axi_wt_rready),
		.s_axis_tdata(x_tdata), .s_axis_tvalid(x_tvalid), .s_axis_tready(x_tready),
		.m_axis_tdata(y_tdata), .m_axis_tvalid(y_tvalid), .m_axis_tready(y_tready)
	);

	strip_writer #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(OUT_W), .MAX_BURST(MAX_BURST), .DIM_BITS(DIM_BITS)
	) writer (
		.clk, .rst,
		.start(wr_start), .cfg_base(wr_base), .cfg_h, .cfg_w, .cfg_c(DIM_BITS'(C)), .cfg_tiles,
		.busy(wr_busy), .done(wr_done), .err(wr_err),
		.s_axis_tdata(y_tdata), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(y_tvalid),
		.s_axis_tready(y_tready),
		.m_axi_awid(m_axi_wr_awid), .m_axi_awaddr(m_axi_wr_awaddr), .m_axi_awlen(m_axi_wr_awlen),
		.m_axi_awsize(m_axi_wr_awsize), .m_axi_awburst(m_axi_wr_awburst), .m_axi_awcache(m_axi_wr_awcache),
		.m_axi_awprot(m_axi_wr_awprot), .m_axi_awvalid(m_axi_wr_awvalid), .m_axi_awready(m_axi_wr_awready),
		.m_axi_wdata(m_axi_wr_wdata), .m_axi_wstrb(m_axi_wr_wstrb), .m_axi_wlast(m_axi_wr_wlast),
		.m_axi_wvalid(m_axi_wr_wvalid), .m_axi_wready(m_axi_wr_wready),
		.m_axi_bid(m_axi_wr_bid), .m_axi_bresp(m_axi_wr_bresp), .m_axi_bvalid(m_axi_wr_bvalid),
		.m_axi_bready(m_axi_wr_bready)
	);

endmodule : rolled_stage
