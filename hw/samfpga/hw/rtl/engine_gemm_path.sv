// The layer-sequential engine's GEMM path as one design: access_reader -> the activations widened to the unit's
// A_BITS (INT8 or UINT8 per frame) -> token_batch_mvu (run-time shape, requantised or raw) -> [residual steps: a
// second access_reader for the residual at RES_LANES bytes a beat, the unit's outputs re-cut to as many, both 8-bit
// streams widened and added lane by lane (add_streams.sv), requant_lanes.sv at LANES = RES_LANES whose parameters
// a third access_reader streams from DDR, re-cut to the writer's PE bytes] -> access_writer, DDR to
// DDR, and [LayerNorm steps: the LayerNorm and its requantiser lanes, layernorm_lanes.sv at SIMD lanes, between the
// widened bytes and the unit, its lanes' parameters from the same parameter reader], and [depthwise steps: the
// reader's bytes re-cut to DW_PE channels (byte_gearbox.sv) -> the depthwise unit with its lanes (dw_core.sv: the 3 x 3
// window, the taps, its weights and lanes' parameters from the parameter reader) -> re-cut to the writer's beats;
// the GEMM unit idle], and [window steps (a 3 x 3 convolution on the GEMM unit): the reader's bytes (or the
// LayerNorm's outputs) re-cut to DW_PE channels -> the depthwise unit's padding and window alone (dw_core.sv,
// cfg_window) -> its 9 taps x DW_PE channels a beat re-cut to the unit's SIMD (the layer's weights stored in that
// order, channels padded to whole beats of DW_PE) -> widened -> the unit], and [attention steps (the unit's raw
// frame): its sums as rows of SM_N keys (raw_rows.sv, the padded keys dropped) -> the softmax (int_softmax.sv, its
// parameter set per layer from a register: QK^T, the queries from the reader, K's blocks the unit's weights) ->
// re-cut to the writer's beats; the V transpose is a plain step of a raw frame of low bytes (one-hot inputs against
// V's blocks give V's values, which the writer places in AV's weight image between its requantisation words, the
// padded keys to its scratch); AV is a plain step over that image], and [image steps (the first convolution, on the raw image): the reader's pixels re-cut to 2 a beat ->
// image_window.sv (each byte through its channel's table, which the parameter reader streams first; 3 x 3 patches at
// stride 2) -> widened -> the unit]. One step of the engine's program
// (samfpga.hw.sim.engine_gemm_path.path_steps):
// the reader reads the step's input in its address pattern, the unit fetches the layer's weights (and requantisation
// words) from the program's DDR image by itself, the writer stores the outputs in the step's address pattern. The unit's fold nf holds channels nf*PE .. nf*PE +
// PE - 1, and RES_LANES divides PE, so channel c is on residual lane c % RES_LANES as the lanes need.
//
// Stream widths line up: the reader emits SIMD bytes per beat (one input beat of the unit: the layer's MW a multiple
// of SIMD; with DMA_ALIGNED its AXI beats re-cut to SIMD bytes), widened lane by lane (cfg_in_unsigned: zero-extended, else sign-extended); the unit emits PE values of
// OUT_BITS per beat (a raw frame's K beats per fold hold its PE sums of K * OUT_BITS bits, element 0 first: the
// little-endian bytes of each sum, as the program stores raw sums), which the writer takes as bytes: each token's
// padding (outputs padded to whole PE folds) dropped and the rest re-cut to its AXI beats (token_pack.sv), so that
// the writer's realignment buffer (none with WR_ALIGNED) is an AXI beat wide whatever PE is.
//
// Sequencing is the host's (the board's ARM through the generated AXI-Lite block engine_gemm_path_axil.sv, or the
// cocotb bench): per step it writes the configuration, pulses `start` (which starts the reader and the writer, and
// what the step's flags need, in one cycle) and waits for `done` (the writer's last B response). The readers, the
// writer and the lanes sample their configuration with the start, the unit with the step's first input beat, and
// the flags (cfg_in_unsigned, cfg_residual, cfg_res_unsigned, cfg_layernorm) are read throughout the step, so the
// register block in front of it latches the configuration when a start fires (engine_gemm_path_axil.sv, CFG_LATCH):
// the host writes the next step's registers while a step runs. Five AXI4 masters (m_axi_rd_*, m_axi_wt_*: the weights, m_axi_rs_*: the
// residual, m_axi_pm_*: the lanes' parameters, m_axi_wr_*), merged onto the PS's HP port by an interconnect.

module engine_gemm_path #(
	// the GEMM unit (token_batch_mvu.sv; RQ = 1, RT_SHAPE = 1, A_SIGNED = 1)
	int unsigned  MW = 16,
	int unsigned  MH = 8,
	int unsigned  SIMD = 4,
	int unsigned  PE = 2,
	int unsigned  A_BITS = 9,
	int unsigned  W_BITS = 8,
	int unsigned  ACC_BITS = 24,
	int unsigned  B = 4,
	int unsigned  AXI_DW = 64,
	int unsigned  AXI_AW = 32,
	int unsigned  MAX_BURST = 16,
	int unsigned  WFIFO_DEPTH = 32,
	int unsigned  CNT_BITS = 20,
	int unsigned  OUT_BITS = 8,
	int unsigned  RS_BITS = 18,
	int unsigned  RB_BITS = 40,
	int unsigned  RT_BITS = 6,
	int unsigned  PQ_DEPTH = 4,
	int unsigned  DOT = 2,
	bit  RAW_OUT = 0,
	int unsigned  RAW_BITS = 0,
	// the DMAs
	int unsigned  DMA_BURST = 16,
	// 1: the input and residual readers are access_reader.sv's ALIGNED variant (no realignment buffer; every frame
	// of theirs on whole AXI beats, as the program keeps them: engine_gemm_path.dma_aligned), their AXI beats re-cut
	// to the unit's SIMD bytes and the residual's lanes by byte gearboxes. The parameter reader is ALIGNED always:
	// the program stores each of its beats in an AXI beat of its own (engine_gemm_path.stored_params)
	bit  DMA_ALIGNED = 0,
	// 1: the writer is access_writer.sv's ALIGNED variant, every frame of it on whole AXI beats as
	// engine_gemm_path.wr_aligned checks; it takes the AXI beats token_pack.sv cuts either way
	bit  WR_ALIGNED = 0,
	// the residual adder's lanes (0: PE; fewer, a divisor of PE: the unit's folds re-cut to them, enough when the
	// unit sends a fold of PE per PE / RES_LANES cycles or slower) and their requantisers (requant_lanes.sv at
	// LANES = RES_LANES): scale / bias / shift widths, entries
	int unsigned  RES_LANES = 0,
	int unsigned  L_S_BITS = 18,
	int unsigned  L_B_BITS = 40,
	int unsigned  L_T_BITS = 6,
	int unsigned  L_DEPTH = 8,
	// the LayerNorm on the unit's input (layernorm_lanes.sv at SIMD lanes, its lanes of the widths above; LN_C = 0:
	// none): the widest layer's channels, the kernel's output width and table, the statistics' width
	int unsigned  LN_C = 0,
	int unsigned  LN_BITS = 12,
	int unsigned  LN_T = 10,
	int unsigned  LN_RB = 16,
	int unsigned  LN_SHIFT_BIAS = 16,
	int unsigned  LN_SB = 48,
	parameter  LN_RSQRT_FILE = "",
	// its input width (0: A_BITS) and the bytes of a raw sum it may read (0: none; a raw frame's words, the neck's
	// LayerNorms' inputs)
	int unsigned  LN_IN_BITS = 0,
	int unsigned  LN_RAW_B = 0,
	int unsigned  LN_PE = 0,	// its lanes (0: SIMD; fewer: its beats re-cut from and to the unit's)
	// the depthwise unit (dw_core.sv, its lanes of the widths above; DW_PE = 0: none): channels per beat, the
	// widest padded strip's columns, beats of DW_PE channels per pixel, the weights' width
	int unsigned  DW_PE = 0,
	int unsigned  DW_W_MAX = 18,
	int unsigned  DW_CB_MAX = 4,
	int unsigned  DW_W_BITS = 8,
	parameter  DW_RAM_STYLE = "auto",	// its window's banks (sdp_ram.sv): "ultra" where the plan puts them in URAM
	// the attention's rows (raw_rows.sv, then int_softmax.sv with RT_SET = 1; SM_N = 0: none): a raw frame's sums
	// as rows of SM_N keys (SM_NF folds of PE sums, the padded keys dropped) at SM_PE lanes of SM_IN_BITS, through
	// the softmax (QK^T; its parameter set per layer: cfg_sm_set), the softmax's own parameters (int_softmax.sv's,
	// prefixed SM_)
	int unsigned  SM_N = 0,
	int unsigned  SM_NF = 1,
	int unsigned  SM_PE = 1,
	int unsigned  SM_IN_BITS = 24,
	int unsigned  SM_ITERS = 1,
	logic [SM_ITERS*64-1:0]  SM_MULT = 1,
	int unsigned  SM_MB = 16,
	int unsigned  SM_P = 1,
	int unsigned  SM_ROWS = 0,
	int unsigned  SM_BB = 16,
	int unsigned  SM_SIDE = 0,
	int unsigned  SM_G = 6,
	int unsigned  SM_E = 16,
	int unsigned  SM_W = 40,
	logic [SM_ITERS*64-1:0]  SM_K = 1,
	int unsigned  SM_KB = 48,
	int unsigned  SM_UB = 40,
	parameter  SM_EXP_FILE = "",
	parameter  SM_BIAS_FILE = "",
	bit  SM_BIAS_RAM = 0,
	logic [SM_ITERS*8-1:0]  SM_SET_HEADS = '0,
	int unsigned  SM_DSB = 2,
	// the image's window (image_window.sv; IMG_W_MAX = 0: none): the widest image, its channels
	int unsigned  IMG_W_MAX = 0,
	int unsigned  IMG_C = 3,

	localparam int unsigned  NM_IN = LN_IN_BITS > A_BITS? LN_IN_BITS : A_BITS,
	localparam int unsigned  NM_C = LN_C > 0? LN_C : 1,
	localparam int unsigned  NM_GB = LN_C > 0? $clog2(LN_C/(LN_PE > 0? LN_PE : SIMD) + 1) : 1
)(
	input	logic  clk,
	input	logic  rst,

	// a step: `start` (while !busy) starts the reader and the writer, and for a residual step the residual and
	// parameter readers and the lanes, for a LayerNorm step the parameter reader and the LayerNorm; busy while any
	// of them is; `done` pulses when the writer's last B response is in (busy falls with it). err: [0] an AXI error
	// response on any master (sticky until reset), [1] the reader's configuration refused, [2] the unit's (sticky),
	// [3] the writer's, [4] the residual reader's, [5] the parameter reader's, [6] the residual lanes', [7] the
	// LayerNorm's or the depthwise unit's (its configuration, its input's packets or its lanes; each until the next
	// start of that part)
	input	logic  start,
	output	logic  busy,
	output	logic  done,
	output	logic [7:0]  err,

	// reader: the step's input
	input	logic [AXI_AW-1:0]  cfg_rd_base,
	input	logic [31:0]  cfg_rd_run,
	input	logic [15:0]  cfg_rd_count0,
	input	logic [15:0]  cfg_rd_count1,
	input	logic [15:0]  cfg_rd_count2,
	input	logic [15:0]  cfg_rd_count3,
	input	logic [15:0]  cfg_rd_count4,
	input	logic [15:0]  cfg_rd_count5,
	input	logic [31:0]  cfg_rd_stride0,
	input	logic [31:0]  cfg_rd_stride1,
	input	logic [31:0]  cfg_rd_stride2,
	input	logic [31:0]  cfg_rd_stride3,
	input	logic [31:0]  cfg_rd_stride4,
	input	logic [31:0]  cfg_rd_stride5,
	input	logic  cfg_in_unsigned,	// the step's input is UINT8, else INT8: held for the whole step, not sampled
	// GEMM unit: sampled with the step's first input beat
	input	logic [AXI_AW-1:0]  cfg_wt_base,
	input	logic [AXI_AW-1:0]  cfg_wt_stride,
	input	logic [CNT_BITS-1:0]  cfg_wt_iters,
	input	logic [CNT_BITS-1:0]  cfg_wt_tokens,
	input	logic [CNT_BITS-1:0]  cfg_wt_sf,
	input	logic [CNT_BITS-1:0]  cfg_wt_nf,
	input	logic [CNT_BITS-1:0]  cfg_wt_batch,
	input	logic  cfg_wt_raw,
	input	logic  cfg_wt_unsigned,
	// writer: the step's output
	input	logic [AXI_AW-1:0]  cfg_wr_base,
	input	logic [31:0]  cfg_wr_run,
	input	logic [15:0]  cfg_wr_count0,
	input	logic [15:0]  cfg_wr_count1,
	input	logic [15:0]  cfg_wr_count2,
	input	logic [15:0]  cfg_wr_count3,
	input	logic [15:0]  cfg_wr_count4,
	input	logic [15:0]  cfg_wr_count5,
	input	logic [31:0]  cfg_wr_stride0,
	input	logic [31:0]  cfg_wr_stride1,
	input	logic [31:0]  cfg_wr_stride2,
	input	logic [31:0]  cfg_wr_stride3,
	input	logic [31:0]  cfg_wr_stride4,
	input	logic [31:0]  cfg_wr_stride5,
	// residual steps (cfg_residual = 1): the residual's reader, the lanes' parameter reader, the lanes
	input	logic  cfg_residual,	// held for the whole step
	input	logic  cfg_res_unsigned,	// the residual is UINT8, else INT8: held for the whole step
	input	logic [AXI_AW-1:0]  cfg_rs_base,
	input	logic [31:0]  cfg_rs_run,
	input	logic [15:0]  cfg_rs_count0,
	input	logic [15:0]  cfg_rs_count1,
	input	logic [15:0]  cfg_rs_count2,
	input	logic [15:0]  cfg_rs_count3,
	input	logic [15:0]  cfg_rs_count4,
	input	logic [15:0]  cfg_rs_count5,
	input	logic [31:0]  cfg_rs_stride0,
	input	logic [31:0]  cfg_rs_stride1,
	input	logic [31:0]  cfg_rs_stride2,
	input	logic [31:0]  cfg_rs_stride3,
	input	logic [31:0]  cfg_rs_stride4,
	input	logic [31:0]  cfg_rs_stride5,
	input	logic [AXI_AW-1:0]  cfg_pm_base,
	input	logic [31:0]  cfg_pm_run,
	input	logic [15:0]  cfg_pm_count0,
	input	logic [15:0]  cfg_pm_count1,
	input	logic [15:0]  cfg_pm_count2,
	input	logic [15:0]  cfg_pm_count3,
	input	logic [15:0]  cfg_pm_count4,
	input	logic [15:0]  cfg_pm_count5,
	input	logic [31:0]  cfg_pm_stride0,
	input	logic [31:0]  cfg_pm_stride1,
	input	logic [31:0]  cfg_pm_stride2,
	input	logic [31:0]  cfg_pm_stride3,
	input	logic [31:0]  cfg_pm_stride4,
	input	logic [31:0]  cfg_pm_stride5,
	// the residual's lanes: sampled with the start (groups = MH / the lanes, tokens, unsigned clip)
	input	logic [$clog2(L_DEPTH+1)-1:0]  cfg_ln_groups,
	input	logic [CNT_BITS-1:0]  cfg_ln_tokens,
	input	logic  cfg_ln_unsigned,
	// LayerNorm steps (cfg_layernorm = 1): the input's values normalised and requantised (layernorm_lanes.sv, its
	// lanes' parameters from the parameter reader) before the unit; sampled with the start
	input	logic  cfg_layernorm,	// held for the whole step
	input	logic [NM_GB-1:0]  cfg_nm_beats,	// the layer's channels / LN_PE
	input	logic [CNT_BITS-1:0]  cfg_nm_tokens,
	input	logic  cfg_nm_unsigned,	// the lanes' clip, and so the unit's input: UINT8 (else INT8)
	input	logic [63:0]  cfg_nm_eps,
	input	logic [NM_C-1:0]  cfg_nm_neg,
	input	logic  cfg_nm_raw,	// the input is raw sums of LN_RAW_B bytes each (signed), not bytes: held for the step
	input	logic  cfg_nm_only,	// a LayerNorm no GEMM follows: its outputs go to the writer, the unit idle; held
	// depthwise steps (cfg_depthwise = 1): the map (H x W, read as one strip: the whole map, or a strip of it with its
	// halos, its interior sides open), beats of DW_PE channels per pixel, stride 2, the lanes' clip; sampled with
	// the start (the input's sign: cfg_in_unsigned)
	input	logic  cfg_depthwise,	// held for the whole step
	input	logic [15:0]  cfg_dw_h,
	input	logic [15:0]  cfg_dw_w,
	input	logic [15:0]  cfg_dw_tiles,
	input	logic [15:0]  cfg_dw_cb,
	input	logic  cfg_dw_stride2,
	input	logic  cfg_dw_unsigned,
	input	logic  cfg_dw_open_l,	// the map is a strip of a wider one, its halo on that side (dw_core.sv)
	input	logic  cfg_dw_open_r,
	// window steps (cfg_window = 1, held for the step; cfg_depthwise = 0): the depthwise unit's window over the map,
	// or with cfg_layernorm over the LayerNorm's outputs (cfg_dw_*, cfg_dw_unsigned unused) feeds the GEMM unit (cfg_wt_*: the layer's inputs 9 * cfg_dw_cb * DW_PE
	// values in the window's order, a multiple of SIMD: a window beat's bytes may straddle the unit's beats)
	input	logic  cfg_window,
	// QK^T steps (held for the step; the unit runs a raw frame): its rows through the softmax (cfg_softmax, its
	// parameter set cfg_sm_set)
	input	logic  cfg_softmax,
	input	logic [7:0]  cfg_sm_set,
	input	logic [31:0]  cfg_sm_rows,	// the step's rows: its last ends the writer's stream (a partial last beat)
	// image steps (cfg_image = 1, held for the step; the first convolution, 3 x 3 at stride 2 on the raw image): the
	// reader's pixels (4 bytes each, 2 a beat after a gearbox) through the image window (its table from the
	// parameter reader; cfg_in_unsigned: the table's values' sign) to the unit; the image's height and width,
	// sampled with the start
	input	logic  cfg_image,
	input	logic [15:0]  cfg_img_h,
	input	logic [15:0]  cfg_img_w,
	// the writer's input (token_pack.sv): steps whose unit outputs are padded to whole PE folds send tokens of
	// cfg_wr_pk_beats beats of PE bytes whose first cfg_wr_pk_keep bytes are kept, the rest dropped; 0: every byte
	input	logic [15:0]  cfg_wr_pk_beats,
	input	logic [23:0]  cfg_wr_pk_keep,

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

	output	logic  m_axi_rs_arid,
	output	logic [AXI_AW-1:0]  m_axi_rs_araddr,
	output	logic [7:0]  m_axi_rs_arlen,
	output	logic [2:0]  m_axi_rs_arsize,
	output	logic [1:0]  m_axi_rs_arburst,
	output	logic [3:0]  m_axi_rs_arcache,
	output	logic [2:0]  m_axi_rs_arprot,
	output	logic  m_axi_rs_arvalid,
	input	logic  m_axi_rs_arready,
	input	logic  m_axi_rs_rid,
	input	logic [AXI_DW-1:0]  m_axi_rs_rdata,
	input	logic [1:0]  m_axi_rs_rresp,
	input	logic  m_axi_rs_rlast,
	input	logic  m_axi_rs_rvalid,
	output	logic  m_axi_rs_rready,
	output	logic  m_axi_pm_arid,
	output	logic [AXI_AW-1:0]  m_axi_pm_araddr,
	output	logic [7:0]  m_axi_pm_arlen,
	output	logic [2:0]  m_axi_pm_arsize,
	output	logic [1:0]  m_axi_pm_arburst,
	output	logic [3:0]  m_axi_pm_arcache,
	output	logic [2:0]  m_axi_pm_arprot,
	output	logic  m_axi_pm_arvalid,
	input	logic  m_axi_pm_arready,
	input	logic  m_axi_pm_rid,
	input	logic [AXI_DW-1:0]  m_axi_pm_rdata,
	input	logic [1:0]  m_axi_pm_rresp,
	input	logic  m_axi_pm_rlast,
	input	logic  m_axi_pm_rvalid,
	output	logic  m_axi_pm_rready,
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

	uwire  rd_start = start;
	uwire  wr_start = start;
	uwire  rs_start = start && cfg_residual;
	uwire  pm_start = start && (cfg_residual || cfg_layernorm || cfg_depthwise || cfg_image);
	uwire  im_start = start && cfg_image;
	uwire  ln_start = start && cfg_residual;
	uwire  nm_start = start && cfg_layernorm;
	uwire  dw_start = start && (cfg_depthwise || cfg_window);
	uwire  rd_busy, wr_busy, rs_busy, pm_busy, ln_busy, nm_busy, dw_busy, im_busy, wr_done, ln_err, nm_err, im_err;
	uwire [1:0]  rd_err, wt_err, wr_err, rs_err, pm_err;
	uwire [2:0]  dw_err;
	assign	busy = rd_busy || wr_busy || rs_busy || pm_busy || ln_busy || nm_busy || dw_busy || im_busy;
	assign	done = wr_done;
	assign	err = {nm_err || dw_err != 0 || im_err, ln_err, pm_err[1], rs_err[1], wr_err[1], wt_err[1], rd_err[1],
		rd_err[0] || wt_err[0] || wr_err[0] || rs_err[0] || pm_err[0]};

	localparam int unsigned  IN_W = SIMD * 8;
	localparam int unsigned  A_W = (SIMD * A_BITS + 7) / 8 * 8;
	localparam int unsigned  OUT_W = (PE * OUT_BITS + 7) / 8 * 8;
	localparam int unsigned  SUM_BITS = OUT_BITS + 2;	// two 8-bit values, each zero- or sign-extended, added
	localparam int unsigned  P_W = (L_S_BITS + L_B_BITS + L_T_BITS + 7) / 8 * 8;
	localparam int unsigned  RL = RES_LANES > 0? RES_LANES : PE;	// the residual's lanes
	localparam int unsigned  RL_W = RL * OUT_BITS;
	localparam int unsigned  RD_W = DMA_ALIGNED? AXI_DW : IN_W;	// the input reader's stream
	localparam int unsigned  RS_W = DMA_ALIGNED? AXI_DW : RL_W;	// ... the residual reader's

	if(A_BITS < 8)  $error("A_BITS must hold the 8-bit inputs");
	if(PE % RL != 0)  $error("RES_LANES must divide PE");
	if(RL < PE && OUT_BITS != 8)  $error("residual lanes narrower than PE re-cut bytes: OUT_BITS must be 8");
	if(P_W > AXI_DW)  $error("a parameter beat (the lanes' P_W bits) must fit one AXI beat");
	if(RL_W % 8 != 0)  $error("the residual's lanes are read as bytes: RES_LANES * OUT_BITS must be whole bytes");
	if(DMA_ALIGNED && OUT_BITS != 8)  $error("DMA_ALIGNED re-cuts the residual's bytes: OUT_BITS must be 8");

	logic [IN_W-1:0]  x_tdata;
	logic [SIMD-1:0]  x_tkeep;
	logic  x_tlast, x_tvalid, x_tready;
	logic  xg_tvalid, xg_tready;	// the reader's beats on the GEMM side (LayerNorm or unit): not in depthwise steps
	logic  xd_tready;	// ... on the depthwise side (depthwise and window steps)
	logic [A_W-1:0]  g_tdata;	// the unit's input from the reader or the LayerNorm
	logic  g_tvalid, g_tready;
	logic [A_W-1:0]  v_tdata;	// ... from the window (window steps)
	logic  v_tvalid, v_tready;
	logic [A_W-1:0]  a_tdata;
	logic [OUT_W-1:0]  y_tdata;
	logic  y_tvalid, y_tready;
	logic [RL_W-1:0]  r_tdata;	// the residual
	logic  r_tvalid, r_tready;
	logic [RL_W-1:0]  ya_tdata;	// the unit's outputs at the residual's lanes
	logic  ya_tvalid, ya_tready;
	logic [P_W-1:0]  p_tdata;	// the lanes' parameters
	logic  p_tvalid, p_tready;
	logic [(RL*SUM_BITS+7)/8*8-1:0]  a_sum, b_sum, s_tdata;
	logic  s_tvalid, s_tready;
	logic [RL_W-1:0]  q_tdata;	// the lanes' outputs
	logic  q_tvalid, q_tready;
	logic [OUT_W-1:0]  qw_tdata;	// ... at the writer's beats
	logic  qw_tvalid, qw_tready;
	logic [OUT_W-1:0]  w_tdata;	// to the writer
	logic  w_tvalid, w_tready;
	logic [A_W-1:0]  u_tdata;	// the unit's input: the widened bytes, or the LayerNorm's widened outputs
	logic  u_tvalid, u_tready;
	logic  lp_tready;	// the residual lanes' parameter input
	logic  pg_tready;	// the parameter stream's readiness on the GEMM side (the LayerNorm's or the residual lanes')
	logic  pd_tready;	// ... on the depthwise side
	logic [OUT_W-1:0]  d_tdata;	// the depthwise unit's outputs re-cut to the writer's beats
	logic  d_tvalid, d_tready;
	logic [OUT_W-1:0]  l_tdata;	// a LayerNorm-only step's outputs re-cut to the writer's beats
	logic  l_tvalid, l_tready;
	logic  n_tlast, lo_ready, rx_ready;
	localparam int unsigned  DWB = DW_PE > 0? DW_PE : 1;
	logic [8*DWB-1:0]  nd_tdata;	// window steps with a LayerNorm: its outputs re-cut to DW_PE for the window
	logic  nd_tlast, nd_tvalid, nd_tready;
	logic [OUT_W-1:0]  h_tdata;	// attention steps: the rows' outputs re-cut to the writer's beats
	logic  h_tvalid, h_tready, yr_ready;

	logic [RD_W-1:0]  xr_tdata;	// the input reader's beats
	logic [RD_W/8-1:0]  xr_tkeep;
	logic  xr_tlast, xr_tvalid, xr_tready;
	access_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(RD_W), .MAX_BURST(DMA_BURST), .ALIGNED(DMA_ALIGNED)
	) reader (
		.clk, .rst, .start(rd_start),
		.cfg_base(cfg_rd_base), .cfg_run(cfg_rd_run), .cfg_count0(cfg_rd_count0), .cfg_count1(cfg_rd_count1), .cfg_count2(cfg_rd_count2), .cfg_count3(cfg_rd_count3), .cfg_count4(cfg_rd_count4), .cfg_count5(cfg_rd_count5),
		.cfg_stride0(cfg_rd_stride0), .cfg_stride1(cfg_rd_stride1), .cfg_stride2(cfg_rd_stride2), .cfg_stride3(cfg_rd_stride3), .cfg_stride4(cfg_rd_stride4), .cfg_stride5(cfg_rd_stride5),
		.busy(rd_busy), .err(rd_err),
		.m_axi_arid(m_axi_rd_arid), .m_axi_araddr(m_axi_rd_araddr), .m_axi_arlen(m_axi_rd_arlen),
		.m_axi_arsize(m_axi_rd_arsize), .m_axi_arburst(m_axi_rd_arburst), .m_axi_arcache(m_axi_rd_arcache),
		.m_axi_arprot(m_axi_rd_arprot), .m_axi_arvalid(m_axi_rd_arvalid), .m_axi_arready(m_axi_rd_arready),
		.m_axi_rid(m_axi_rd_rid), .m_axi_rdata(m_axi_rd_rdata), .m_axi_rresp(m_axi_rd_rresp),
		.m_axi_rlast(m_axi_rd_rlast), .m_axi_rvalid(m_axi_rd_rvalid), .m_axi_rready(m_axi_rd_rready),
		.m_axis_tdata(xr_tdata), .m_axis_tkeep(xr_tkeep), .m_axis_tlast(xr_tlast), .m_axis_tvalid(xr_tvalid),
		.m_axis_tready(xr_tready)
	);
	// DMA_ALIGNED: the reader's AXI beats re-cut to the unit's SIMD bytes (else equal widths: a pass-through)
	byte_gearbox #(.IN_B(RD_W/8), .OUT_B(SIMD)) read_gear (
		.clk, .rst,
		.s_axis_tdata(xr_tdata), .s_axis_tkeep(xr_tkeep), .s_axis_tlast(xr_tlast), .s_axis_tvalid(xr_tvalid),
		.s_axis_tready(xr_tready),
		.m_axis_tdata(x_tdata), .m_axis_tkeep(x_tkeep), .m_axis_tlast(x_tlast), .m_axis_tvalid(x_tvalid),
		.m_axis_tready(x_tready)
	);
	// the reader's beats go to the depthwise unit's gearbox in depthwise steps and window steps without a LayerNorm
	// (image steps: to the image window's gearbox)
	uwire  to_dw_side = cfg_depthwise || (cfg_window && !cfg_layernorm);
	logic [A_W-1:0]  im_tdata;	// the image window's patches (image steps)
	logic  im_tvalid, im_tready, xi_tready;
	assign	xg_tvalid = x_tvalid && !to_dw_side && !cfg_image;
	assign	x_tready = cfg_image? xi_tready : to_dw_side? xd_tready : xg_tready;
	assign	u_tdata = cfg_image? im_tdata : cfg_window? v_tdata : g_tdata;
	assign	u_tvalid = cfg_image? im_tvalid : cfg_window? v_tvalid : g_tvalid;
	assign	g_tready = !cfg_window && !cfg_image && u_tready;
	assign	v_tready = cfg_window && u_tready;
	assign	im_tready = cfg_image && u_tready;

	// each of SIMD bytes as an A_BITS lane of the unit's input: zero-extended (UINT8) or sign-extended (INT8)
	function automatic logic [A_W-1:0] widen(input logic [8*SIMD-1:0]  b, input logic  is_unsigned);
		automatic logic [A_W-1:0]  w = '0;
		for(int unsigned  s = 0; s < SIMD; s++)
			w[s*A_BITS +: A_BITS] = {{(A_BITS-8){!is_unsigned && b[8*s + 7]}}, b[8*s +: 8]};
		return w;
	endfunction
	assign	a_tdata = widen(x_tdata, cfg_in_unsigned);

	token_batch_mvu #(
		.MW(MW), .MH(MH), .SIMD(SIMD), .PE(PE), .A_BITS(A_BITS), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS), .A_SIGNED(1),
		.W_SIGNED(1), .B(B), .AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .MAX_BURST(MAX_BURST), .WFIFO_DEPTH(WFIFO_DEPTH),
		.CNT_BITS(CNT_BITS), .RQ(1), .OUT_BITS(OUT_BITS), .OUT_SIGNED(1), .RS_BITS(RS_BITS), .RB_BITS(RB_BITS),
		.RT_BITS(RT_BITS), .PQ_DEPTH(PQ_DEPTH), .DOT(DOT), .RT_SHAPE(1), .RAW_OUT(RAW_OUT), .RAW_BITS(RAW_BITS)
	) unit (
		.clk, .rst,
		.cfg_base(cfg_wt_base), .cfg_stride(cfg_wt_stride), .cfg_iters(cfg_wt_iters), .cfg_tokens(cfg_wt_tokens),
		.cfg_sf(cfg_wt_sf), .cfg_nf(cfg_wt_nf), .cfg_batch(cfg_wt_batch), .cfg_raw(cfg_wt_raw),
		.cfg_unsigned(cfg_wt_unsigned), .err(wt_err),
		.m_axi_arid(m_axi_wt_arid), .m_axi_araddr(m_axi_wt_araddr), .m_axi_arlen(m_axi_wt_arlen),
		.m_axi_arsize(m_axi_wt_arsize), .m_axi_arburst(m_axi_wt_arburst), .m_axi_arcache(m_axi_wt_arcache),
		.m_axi_arprot(m_axi_wt_arprot), .m_axi_arvalid(m_axi_wt_arvalid), .m_axi_arready(m_axi_wt_arready),
		.m_axi_rid(m_axi_wt_rid), .m_axi_rdata(m_axi_wt_rdata), .m_axi_rresp(m_axi_wt_rresp),
		.m_axi_rlast(m_axi_wt_rlast), .m_axi_rvalid(m_axi_wt_rvalid), .m_axi_rready(m_axi_wt_rready),
		.s_axis_tdata(u_tdata), .s_axis_tvalid(u_tvalid), .s_axis_tready(u_tready),
		.m_axis_tdata(y_tdata), .m_axis_tvalid(y_tvalid), .m_axis_tready(y_tready)
	);

	// LayerNorm steps: the input bytes (re-cut to LN_PE a beat, widened as the input's sign says) or raw sums (re-cut
	// to LN_PE sums a beat, sign-extended) through the LayerNorm and its lanes at LN_PE lanes (channel c on lane
	// c % LN_PE), their 8-bit outputs re-cut to the unit's SIMD and widened as the clip's sign says, or (a LayerNorm
	// no GEMM follows) re-cut to the writer's beats; other steps go straight to the unit
	if(LN_C > 0) begin : genNorm
		localparam int unsigned  NP = LN_PE > 0? LN_PE : SIMD;
		uwire [NP*8-1:0]  n_tdata;
		uwire [(NP*NM_IN+7)/8*8-1:0]  ln_in;
		uwire  n_tvalid, n_tready, nx_ready, np_ready, ln_valid;
		uwire [8*NP-1:0]  b_tdata;
		uwire  b_tvalid, b_tready, bx_ready;
		byte_gearbox #(.IN_B(SIMD), .OUT_B(NP)) to_norm (
			.clk, .rst,
			.s_axis_tdata(x_tdata), .s_axis_tkeep(x_tkeep), .s_axis_tlast(x_tlast),
			.s_axis_tvalid(cfg_layernorm && !cfg_nm_raw && xg_tvalid), .s_axis_tready(bx_ready),
			.m_axis_tdata(b_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(b_tvalid),
			.m_axis_tready(b_tready)
		);
		logic [(NP*NM_IN+7)/8*8-1:0]  widened;
		always_comb begin
			widened = '0;
			for(int unsigned  k = 0; k < NP; k++)
				widened[k*NM_IN +: NM_IN] = {{(NM_IN-8){!cfg_in_unsigned && b_tdata[8*k + 7]}}, b_tdata[8*k +: 8]};
		end
		if(LN_RAW_B > 0) begin : genRaw
			uwire [8*LN_RAW_B*NP-1:0]  r_tdata;
			uwire  r_tvalid, r_tready;
			byte_gearbox #(.IN_B(SIMD), .OUT_B(LN_RAW_B*NP)) to_raw (
				.clk, .rst,
				.s_axis_tdata(x_tdata), .s_axis_tkeep(x_tkeep), .s_axis_tlast(x_tlast),
				.s_axis_tvalid(cfg_nm_raw && xg_tvalid), .s_axis_tready(rx_ready),
				.m_axis_tdata(r_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(r_tvalid),
				.m_axis_tready(r_tready)
			);
			logic [(NP*NM_IN+7)/8*8-1:0]  v;
			always_comb begin
				v = '0;
				for(int unsigned  k = 0; k < NP; k++)
					v[k*NM_IN +: NM_IN] = NM_IN'($signed(r_tdata[8*LN_RAW_B*k +: 8*LN_RAW_B]));
			end
			assign	ln_in = cfg_nm_raw? v : widened;
			assign	ln_valid = cfg_nm_raw? r_tvalid : b_tvalid;
			assign	r_tready = cfg_nm_raw && nx_ready;
		end : genRaw
		else begin : genBytes
			assign	ln_in = widened;
			assign	ln_valid = b_tvalid;
			assign	rx_ready = 0;
		end : genBytes
		assign	b_tready = !cfg_nm_raw && nx_ready;
		layernorm_lanes #(
			.C(LN_C), .PE(NP), .IN_BITS(NM_IN), .LN_BITS(LN_BITS), .T(LN_T), .RB(LN_RB),
			.SHIFT_BIAS(LN_SHIFT_BIAS), .SB(LN_SB), .RSQRT_FILE(LN_RSQRT_FILE), .OUT_BITS(8), .S_BITS(L_S_BITS),
			.B_BITS(L_B_BITS), .T_BITS(L_T_BITS), .TOK_BITS(CNT_BITS)
		) norm (
			.clk, .rst,
			.start(nm_start), .cfg_beats(cfg_nm_beats), .cfg_tokens(cfg_nm_tokens), .cfg_unsigned(cfg_nm_unsigned),
			.cfg_eps(cfg_nm_eps), .cfg_neg(cfg_nm_neg), .busy(nm_busy), .err(nm_err),
			.p_axis_tdata(p_tdata), .p_axis_tvalid(cfg_layernorm && p_tvalid), .p_axis_tready(np_ready),
			.s_axis_tdata(ln_in), .s_axis_tvalid(ln_valid), .s_axis_tready(nx_ready),
			.m_axis_tdata(n_tdata), .m_axis_tlast(n_tlast), .m_axis_tvalid(n_tvalid), .m_axis_tready(n_tready)
		);
		// to the unit: LN_PE outputs a beat re-cut to SIMD, widened
		uwire [8*SIMD-1:0]  nu_tdata;
		uwire  nu_tvalid, nu_tready, nu_ready;
		byte_gearbox #(.IN_B(NP), .OUT_B(SIMD)) to_unit (
			.clk, .rst,
			.s_axis_tdata(n_tdata), .s_axis_tkeep('1), .s_axis_tlast(n_tlast),
			.s_axis_tvalid(!cfg_nm_only && !cfg_window && n_tvalid), .s_axis_tready(nu_ready),
			.m_axis_tdata(nu_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(nu_tvalid),
			.m_axis_tready(nu_tready)
		);
		always_comb begin
			g_tdata = a_tdata;
			if(cfg_layernorm)  g_tdata = widen(nu_tdata, cfg_nm_unsigned);
		end
		// a LayerNorm no GEMM follows: its outputs re-cut to the writer's beats
		byte_gearbox #(.IN_B(NP), .OUT_B(OUT_W/8)) from_norm (
			.clk, .rst,
			.s_axis_tdata(n_tdata), .s_axis_tkeep('1), .s_axis_tlast(n_tlast), .s_axis_tvalid(cfg_nm_only && n_tvalid),
			.s_axis_tready(lo_ready),
			.m_axis_tdata(l_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(l_tvalid), .m_axis_tready(l_tready)
		);
		assign	g_tvalid = cfg_layernorm? nu_tvalid : xg_tvalid;
		assign	nu_tready = cfg_layernorm && g_tready;
		// a window step: its outputs re-cut to the depthwise unit's DW_PE for the window
		uwire  nd_ready;
		if(DW_PE > 0) begin : genToWindow
			byte_gearbox #(.IN_B(NP), .OUT_B(DW_PE)) to_window (
				.clk, .rst,
				.s_axis_tdata(n_tdata), .s_axis_tkeep('1), .s_axis_tlast(n_tlast), .s_axis_tvalid(cfg_window && n_tvalid),
				.s_axis_tready(nd_ready),
				.m_axis_tdata(nd_tdata), .m_axis_tkeep(), .m_axis_tlast(nd_tlast), .m_axis_tvalid(nd_tvalid),
				.m_axis_tready(nd_tready)
			);
		end : genToWindow
		else begin : genNoWindow
			assign	nd_ready = 0;
			assign	nd_tdata = '0;
			assign	nd_tlast = 0;
			assign	nd_tvalid = 0;
		end : genNoWindow
		assign	n_tready = cfg_nm_only? lo_ready : cfg_window? nd_ready : nu_ready;
		assign	xg_tready = cfg_layernorm? (cfg_nm_raw? rx_ready : bx_ready) : g_tready;
		assign	pg_tready = cfg_layernorm? np_ready : lp_tready;
	end : genNorm
	else begin : genNoNorm
		assign	g_tdata = a_tdata;
		assign	g_tvalid = xg_tvalid;
		assign	xg_tready = g_tready;
		assign	pg_tready = lp_tready;
		assign	nm_busy = 0;
		assign	nm_err = 0;
		assign	l_tdata = '0;
		assign	l_tvalid = 0;
		assign	nd_tdata = '0;
		assign	nd_tlast = 0;
		assign	nd_tvalid = 0;
	end : genNoNorm

	// the writer's input: the unit side's beats (PE bytes) with each token's padding dropped, re-cut to the port's
	// (token_pack.sv), so that the writer's realignment buffer (none with WR_ALIGNED) is a port beat wide and it
	// writes no padding; the frame ends at the writer's byte count, once its walk has sized the frame
	uwire  wr_sized;
	uwire [47:0]  wr_size;
	logic [AXI_DW-1:0]  wp_tdata;	// the writer's beats
	logic  wp_tvalid, wp_tready;
	token_pack #(.IN_B(OUT_W/8), .OUT_B(AXI_DW/8), .BYTES_BITS(AXI_AW), .BEAT_BITS(16), .KEEP_BITS(24)) to_writer (
		.clk, .rst, .start(wr_start), .cfg_beats(cfg_wr_pk_beats), .cfg_keep(cfg_wr_pk_keep),
		.go(wr_sized), .bytes(AXI_AW'(wr_size)),
		.s_tdata(w_tdata), .s_tvalid(w_tvalid), .s_tready(w_tready),
		.m_tdata(wp_tdata), .m_tkeep(), .m_tlast(), .m_tvalid(wp_tvalid), .m_tready(wp_tready)
	);
	access_writer #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(AXI_DW), .MAX_BURST(DMA_BURST), .ALIGNED(WR_ALIGNED), .TAIL(0)
	) writer (
		.clk, .rst, .start(wr_start),
		.cfg_base(cfg_wr_base), .cfg_run(cfg_wr_run), .cfg_count0(cfg_wr_count0), .cfg_count1(cfg_wr_count1), .cfg_count2(cfg_wr_count2), .cfg_count3(cfg_wr_count3), .cfg_count4(cfg_wr_count4), .cfg_count5(cfg_wr_count5),
		.cfg_stride0(cfg_wr_stride0), .cfg_stride1(cfg_wr_stride1), .cfg_stride2(cfg_wr_stride2), .cfg_stride3(cfg_wr_stride3), .cfg_stride4(cfg_wr_stride4), .cfg_stride5(cfg_wr_stride5),
		.cfg_tail('0), .cfg_tail_addr('0), .cfg_tail_level('0),
		.busy(wr_busy), .done(wr_done), .err(wr_err), .sized(wr_sized), .size(wr_size),
		.s_axis_tdata(wp_tdata), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(wp_tvalid),
		.s_axis_tready(wp_tready),
		.m_axi_awid(m_axi_wr_awid), .m_axi_awaddr(m_axi_wr_awaddr), .m_axi_awlen(m_axi_wr_awlen),
		.m_axi_awsize(m_axi_wr_awsize), .m_axi_awburst(m_axi_wr_awburst), .m_axi_awcache(m_axi_wr_awcache),
		.m_axi_awprot(m_axi_wr_awprot), .m_axi_awvalid(m_axi_wr_awvalid), .m_axi_awready(m_axi_wr_awready),
		.m_axi_wdata(m_axi_wr_wdata), .m_axi_wstrb(m_axi_wr_wstrb), .m_axi_wlast(m_axi_wr_wlast),
		.m_axi_wvalid(m_axi_wr_wvalid), .m_axi_wready(m_axi_wr_wready),
		.m_axi_bid(m_axi_wr_bid), .m_axi_bresp(m_axi_wr_bresp), .m_axi_bvalid(m_axi_wr_bvalid),
		.m_axi_bready(m_axi_wr_bready)
	);

	// residual steps: the unit's outputs (signed unless cfg_wt_unsigned) and the residual, both widened, added lane
	// by lane (add_streams.sv), requantised by the lanes; other steps send the unit's outputs to the writer
	logic [RS_W-1:0]  rr_tdata;	// the residual reader's beats
	logic [RS_W/8-1:0]  rr_tkeep;
	logic  rr_tlast, rr_tvalid, rr_tready;
	access_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(RS_W), .MAX_BURST(DMA_BURST), .ALIGNED(DMA_ALIGNED)
	) res_reader (
		.clk, .rst, .start(rs_start),
		.cfg_base(cfg_rs_base), .cfg_run(cfg_rs_run), .cfg_count0(cfg_rs_count0), .cfg_count1(cfg_rs_count1), .cfg_count2(cfg_rs_count2), .cfg_count3(cfg_rs_count3), .cfg_count4(cfg_rs_count4), .cfg_count5(cfg_rs_count5),
		.cfg_stride0(cfg_rs_stride0), .cfg_stride1(cfg_rs_stride1), .cfg_stride2(cfg_rs_stride2), .cfg_stride3(cfg_rs_stride3), .cfg_stride4(cfg_rs_stride4), .cfg_stride5(cfg_rs_stride5),
		.busy(rs_busy), .err(rs_err),
		.m_axi_arid(m_axi_rs_arid), .m_axi_araddr(m_axi_rs_araddr), .m_axi_arlen(m_axi_rs_arlen),
		.m_axi_arsize(m_axi_rs_arsize), .m_axi_arburst(m_axi_rs_arburst), .m_axi_arcache(m_axi_rs_arcache),
		.m_axi_arprot(m_axi_rs_arprot), .m_axi_arvalid(m_axi_rs_arvalid), .m_axi_arready(m_axi_rs_arready),
		.m_axi_rid(m_axi_rs_rid), .m_axi_rdata(m_axi_rs_rdata), .m_axi_rresp(m_axi_rs_rresp),
		.m_axi_rlast(m_axi_rs_rlast), .m_axi_rvalid(m_axi_rs_rvalid), .m_axi_rready(m_axi_rs_rready),
		.m_axis_tdata(rr_tdata), .m_axis_tkeep(rr_tkeep), .m_axis_tlast(rr_tlast), .m_axis_tvalid(rr_tvalid),
		.m_axis_tready(rr_tready)
	);
	// DMA_ALIGNED: the residual reader's AXI beats re-cut to the residual's lanes (else a pass-through)
	byte_gearbox #(.IN_B(RS_W/8), .OUT_B(RL_W/8)) res_gear (
		.clk, .rst,
		.s_axis_tdata(rr_tdata), .s_axis_tkeep(rr_tkeep), .s_axis_tlast(rr_tlast), .s_axis_tvalid(rr_tvalid),
		.s_axis_tready(rr_tready),
		.m_axis_tdata(r_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(r_tvalid),
		.m_axis_tready(r_tready)
	);

	logic [AXI_DW-1:0]  pr_tdata;	// a parameter beat in the low P_W bits of an AXI beat
	access_reader #(
		.AXI_DW(AXI_DW), .AXI_AW(AXI_AW), .STREAM_W(AXI_DW), .MAX_BURST(DMA_BURST), .ALIGNED(1)
	) param_reader (
		.clk, .rst, .start(pm_start),
		.cfg_base(cfg_pm_base), .cfg_run(cfg_pm_run), .cfg_count0(cfg_pm_count0), .cfg_count1(cfg_pm_count1), .cfg_count2(cfg_pm_count2), .cfg_count3(cfg_pm_count3), .cfg_count4(cfg_pm_count4), .cfg_count5(cfg_pm_count5),
		.cfg_stride0(cfg_pm_stride0), .cfg_stride1(cfg_pm_stride1), .cfg_stride2(cfg_pm_stride2), .cfg_stride3(cfg_pm_stride3), .cfg_stride4(cfg_pm_stride4), .cfg_stride5(cfg_pm_stride5),
		.busy(pm_busy), .err(pm_err),
		.m_axi_arid(m_axi_pm_arid), .m_axi_araddr(m_axi_pm_araddr), .m_axi_arlen(m_axi_pm_arlen),
		.m_axi_arsize(m_axi_pm_arsize), .m_axi_arburst(m_axi_pm_arburst), .m_axi_arcache(m_axi_pm_arcache),
		.m_axi_arprot(m_axi_pm_arprot), .m_axi_arvalid(m_axi_pm_arvalid), .m_axi_arready(m_axi_pm_arready),
		.m_axi_rid(m_axi_pm_rid), .m_axi_rdata(m_axi_pm_rdata), .m_axi_rresp(m_axi_pm_rresp),
		.m_axi_rlast(m_axi_pm_rlast), .m_axi_rvalid(m_axi_pm_rvalid), .m_axi_rready(m_axi_pm_rready),
		.m_axis_tdata(pr_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(p_tvalid), .m_axis_tready(p_tready)
	);
	assign	p_tdata = pr_tdata[P_W-1:0];

	uwire  add_a_ready;
	if(RL < PE) begin : genToLanes
		byte_gearbox #(.IN_B(PE), .OUT_B(RL)) to_lanes (
			.clk, .rst,
			.s_axis_tdata(y_tdata), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(cfg_residual && y_tvalid),
			.s_axis_tready(ya_tready),
			.m_axis_tdata(ya_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(ya_tvalid),
			.m_axis_tready(add_a_ready)
		);
		byte_gearbox #(.IN_B(RL), .OUT_B(PE)) from_lanes (
			.clk, .rst,
			.s_axis_tdata(q_tdata), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(q_tvalid),
			.s_axis_tready(q_tready),
			.m_axis_tdata(qw_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(qw_tvalid),
			.m_axis_tready(qw_tready)
		);
	end : genToLanes
	else begin : genFullLanes
		assign	ya_tdata = y_tdata;
		assign	ya_tvalid = cfg_residual && y_tvalid;
		assign	ya_tready = add_a_ready;
		assign	qw_tdata = q_tdata;
		assign	qw_tvalid = q_tvalid;
		assign	q_tready = qw_tready;
	end : genFullLanes

	always_comb begin
		a_sum = '0;
		b_sum = '0;
		for(int unsigned  k = 0; k < RL; k++) begin
			a_sum[k*SUM_BITS +: SUM_BITS] = {{(SUM_BITS-OUT_BITS){!cfg_wt_unsigned && ya_tdata[k*OUT_BITS + OUT_BITS-1]}},
				ya_tdata[k*OUT_BITS +: OUT_BITS]};
			b_sum[k*SUM_BITS +: SUM_BITS] = {{(SUM_BITS-OUT_BITS){!cfg_res_unsigned && r_tdata[k*OUT_BITS + OUT_BITS-1]}},
				r_tdata[k*OUT_BITS +: OUT_BITS]};
		end
	end

	add_streams #(
		.PE(RL), .A_BITS(SUM_BITS), .B_BITS(SUM_BITS), .O_BITS(SUM_BITS), .A_SIGNED(1), .B_SIGNED(1)
	) adder (
		.clk, .rst,
		.a_tdata(a_sum), .a_tvalid(ya_tvalid), .a_tready(add_a_ready),
		.b_tdata(b_sum), .b_tvalid(r_tvalid), .b_tready(r_tready),
		.o_tdata(s_tdata), .o_tvalid(s_tvalid), .o_tready(s_tready)
	);

	requant_lanes #(
		.LANES(RL), .IN_BITS(SUM_BITS), .OUT_BITS(OUT_BITS), .S_BITS(L_S_BITS), .B_BITS(L_B_BITS), .T_BITS(L_T_BITS),
		.DEPTH(L_DEPTH), .TOK_BITS(CNT_BITS)
	) lanes (
		.clk, .rst,
		.start(ln_start), .cfg_groups(cfg_ln_groups), .cfg_tokens(cfg_ln_tokens), .cfg_unsigned(cfg_ln_unsigned),
		.busy(ln_busy), .err(ln_err),
		.p_axis_tdata(p_tdata), .p_axis_tvalid(!cfg_layernorm && !cfg_depthwise && !cfg_image && p_tvalid),
		.p_axis_tready(lp_tready),
		.s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
		.m_axis_tdata(q_tdata), .m_axis_tlast(), .m_axis_tvalid(q_tvalid), .m_axis_tready(q_tready)
	);

	uwire  rows = cfg_softmax;	// the unit's raw sums as rows (QK^T)
	assign	y_tready = cfg_residual? ya_tready : rows? yr_ready : !cfg_depthwise && !cfg_nm_only && w_tready;
	assign	w_tdata = cfg_depthwise? d_tdata : cfg_nm_only? l_tdata : cfg_residual? qw_tdata : rows? h_tdata : y_tdata;
	assign	w_tvalid = cfg_depthwise? d_tvalid : cfg_nm_only? l_tvalid : cfg_residual? qw_tvalid : rows? h_tvalid :
		y_tvalid;
	assign	h_tready = rows && !cfg_depthwise && !cfg_nm_only && !cfg_residual && w_tready;

	// QK^T steps: the raw frame's sums as rows of SM_N keys at SM_PE lanes (raw_rows.sv), through the softmax (its
	// 8-bit outputs), re-cut to the writer's beats
	if(SM_N > 0) begin : genRows
		if(OUT_BITS != 8)  $error("the attention's rows take the unit's raw bytes: OUT_BITS must be 8");
		// words of a raw sum: the unit's own rule (token_batch_mvu.sv's K; OUT_BITS = 8, so bytes)
		localparam int unsigned  RK = ((RAW_BITS > 0? RAW_BITS : ACC_BITS) + OUT_BITS - 1) / OUT_BITS;
		if(!RAW_OUT)  $error("the attention's rows take the unit's raw sums: RAW_OUT must be 1");
		localparam int unsigned  RW = (SM_PE*SM_IN_BITS + 7) / 8 * 8;
		uwire [RW-1:0]  rr_tdata;
		uwire  rr_tvalid, rr_tready, sm_ready, sm_valid;
		uwire [8*SM_PE-1:0]  sm_tdata;
		uwire  hg_ready;
		raw_rows #(.PE(PE), .K(RK), .NF(SM_NF), .N(SM_N), .L(SM_PE), .OUT_BITS(SM_IN_BITS)) row_feed (
			.clk, .rst,
			.s_tdata(y_tdata), .s_tvalid(rows && y_tvalid), .s_tready(yr_ready),
			.m_tdata(rr_tdata), .m_tvalid(rr_tvalid), .m_tready(rr_tready)
		);
		int_softmax #(
			.N(SM_N), .PE(SM_PE), .IN_BITS(SM_IN_BITS), .IN_SIGNED(1), .OUT_BITS(8), .ITERS(SM_ITERS), .TOKENS(1),
			.MULT(SM_MULT), .MB(SM_MB), .P(SM_P), .ROWS(SM_ROWS), .BB(SM_BB), .SIDE(SM_SIDE), .G(SM_G), .E(SM_E),
			.W(SM_W), .K(SM_K), .KB(SM_KB), .UB(SM_UB), .EXP_FILE(SM_EXP_FILE), .BIAS_FILE(SM_BIAS_FILE),
			.BIAS_RAM(SM_BIAS_RAM), .RT_SET(1), .SET_HEADS(SM_SET_HEADS), .PIPELINED(1), .DSB(SM_DSB)
		) softmax (
			.clk, .rst, .cfg_set(cfg_sm_set[(SM_ITERS > 1 ? $clog2(SM_ITERS) : 1)-1:0]),
			.i_tdata(rr_tdata), .i_tvalid(cfg_softmax && rr_tvalid), .i_tready(sm_ready),
			.o_tdata(sm_tdata), .o_tvalid(sm_valid), .o_tready(cfg_softmax && hg_ready)
		);
		assign	rr_tready = cfg_softmax && sm_ready;
		// the step's last row's last beat ends the packet: the gearbox sends the bytes it holds as a partial beat,
		// which the writer takes as its frame's last (a step's bytes need not be whole beats of PE)
		localparam int unsigned  RB = SM_N/SM_PE > 1? $clog2(SM_N/SM_PE) : 1;
		logic [RB-1:0]  RowBeat = '0;
		logic [31:0]  RowCnt = '0;
		uwire  hg_valid = cfg_softmax && sm_valid;
		uwire  hg_last = RowBeat == RB'(SM_N/SM_PE - 1) && RowCnt == cfg_sm_rows - 1;
		always_ff @(posedge clk) begin
			if(rst || start) begin
				RowBeat <= '0;
				RowCnt <= '0;
			end
			else if(hg_valid && hg_ready) begin
				RowBeat <= RowBeat == RB'(SM_N/SM_PE - 1)? '0 : RowBeat + 1;
				if(RowBeat == RB'(SM_N/SM_PE - 1))  RowCnt <= RowCnt + 1;
			end
		end
		byte_gearbox #(.IN_B(SM_PE), .OUT_B(OUT_W/8)) from_rows (
			.clk, .rst,
			.s_axis_tdata(sm_tdata), .s_axis_tkeep('1), .s_axis_tlast(hg_last),
			.s_axis_tvalid(hg_valid), .s_axis_tready(hg_ready),
			.m_axis_tdata(h_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(h_tvalid), .m_axis_tready(h_tready)
		);
	end : genRows
	else begin : genNoRows
		assign	yr_ready = 0;
		assign	h_tdata = '0;
		assign	h_tvalid = 0;
	end : genNoRows
	assign	qw_tready = cfg_residual && !cfg_depthwise && w_tready;
	assign	d_tready = cfg_depthwise && w_tready;
	assign	l_tready = cfg_nm_only && w_tready;
	uwire  pi_tready;	// ... the image window's table
	assign	p_tready = cfg_depthwise? pd_tready : cfg_image? pi_tready : pg_tready;

	// image steps: the reader's beats (whole: the image is stored 4 bytes a pixel, a whole number of beats) re-cut
	// to 2 pixels, the window's patches (ceil(9 IMG_C / SIMD) beats of SIMD bytes a pixel) widened to the unit's
	// lanes as the table's values' sign says
	if(IMG_W_MAX > 0) begin : genImage
		uwire [63:0]  ip_tdata;
		uwire  ip_tvalid, ip_tready;
		uwire [8*SIMD-1:0]  iw_tdata;
		byte_gearbox #(.IN_B(SIMD), .OUT_B(8)) to_pixels (
			.clk, .rst,
			.s_axis_tdata(x_tdata), .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(cfg_image && x_tvalid),
			.s_axis_tready(xi_tready),
			.m_axis_tdata(ip_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(ip_tvalid), .m_axis_tready(ip_tready)
		);
		image_window #(.C(IMG_C), .W_MAX(IMG_W_MAX), .OUT_B(SIMD), .TB(P_W/8), .DIM_BITS(16)) window (
			.clk, .rst, .start(im_start), .cfg_h(cfg_img_h), .cfg_w(cfg_img_w), .busy(im_busy), .err(im_err),
			.t_axis_tdata(p_tdata), .t_axis_tvalid(cfg_image && p_tvalid), .t_axis_tready(pi_tready),
			.s_axis_tdata(ip_tdata), .s_axis_tvalid(ip_tvalid), .s_axis_tready(ip_tready),
			.m_axis_tdata(iw_tdata), .m_axis_tlast(), .m_axis_tvalid(im_tvalid), .m_axis_tready(im_tready)
		);
		assign	im_tdata = widen(iw_tdata, cfg_in_unsigned);
	end : genImage
	else begin : genNoImage
		assign	xi_tready = 0;
		assign	pi_tready = 0;
		assign	im_tdata = '0;
		assign	im_tvalid = 0;
		assign	im_busy = 0;
		assign	im_err = 0;
	end : genNoImage

	// depthwise steps: the reader's SIMD bytes per beat re-cut to DW_PE (the map arrives as one packet: the reader's
	// tlast ends its one strip), the unit with its lanes, its DW_PE outputs re-cut to the writer's PE bytes
	if(DW_PE > 0) begin : genDw
		if(OUT_BITS != 8)  $error("the depthwise unit writes bytes: OUT_BITS must be 8");
		uwire [8*DW_PE-1:0]  i_tdata, o_tdata;
		uwire  i_tlast, i_tvalid, i_tready, o_tlast, o_tvalid, o_tready;
		uwire  ln_win = cfg_window && cfg_layernorm;
		uwire  win_unsigned = cfg_layernorm? cfg_nm_unsigned : cfg_in_unsigned;	// the unit's inputs' sign
		uwire [72*DW_PE-1:0]  k_tdata;	// window steps: 9 taps x DW_PE channels a beat
		uwire  k_tlast, k_tvalid, k_tready;
		uwire [8*SIMD-1:0]  kw_tdata;
		byte_gearbox #(.IN_B(9*DW_PE), .OUT_B(SIMD)) to_unit (
			.clk, .rst,
			.s_axis_tdata(k_tdata), .s_axis_tkeep('1), .s_axis_tlast(k_tlast), .s_axis_tvalid(k_tvalid),
			.s_axis_tready(k_tready),
			.m_axis_tdata(kw_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(v_tvalid), .m_axis_tready(v_tready)
		);
		assign	v_tdata = widen(kw_tdata, win_unsigned);
		// the window's input: the reader's bytes, or (a window step with a LayerNorm) the LayerNorm's outputs
		uwire [8*DW_PE-1:0]  w_in_tdata = ln_win? nd_tdata : i_tdata;
		uwire  w_in_tlast = ln_win? nd_tlast : i_tlast;
		uwire  w_in_tvalid = ln_win? nd_tvalid : i_tvalid;
		uwire  w_in_tready;
		assign	i_tready = !ln_win && w_in_tready;
		assign	nd_tready = ln_win && w_in_tready;
		byte_gearbox #(.IN_B(SIMD), .OUT_B(DW_PE)) to_dw (
			.clk, .rst,
			.s_axis_tdata(x_tdata), .s_axis_tkeep(x_tkeep), .s_axis_tlast(x_tlast),
			.s_axis_tvalid(to_dw_side && x_tvalid), .s_axis_tready(xd_tready),
			.m_axis_tdata(i_tdata), .m_axis_tkeep(), .m_axis_tlast(i_tlast), .m_axis_tvalid(i_tvalid),
			.m_axis_tready(i_tready)
		);
		dw_core #(
			.PE(DW_PE), .W_MAX(DW_W_MAX), .CB_MAX(DW_CB_MAX), .W_BITS(DW_W_BITS), .ACC_BITS(9 + DW_W_BITS + 4),
			.OUT_BITS(8), .S_BITS(L_S_BITS), .B_BITS(L_B_BITS), .T_BITS(L_T_BITS), .DIM_BITS(16), .TOK_BITS(CNT_BITS),
			.RAM_STYLE(DW_RAM_STYLE)
		) dw (
			.clk, .rst,
			.start(dw_start), .cfg_h(cfg_dw_h), .cfg_w(cfg_dw_w), .cfg_tiles(cfg_dw_tiles), .cfg_cb(cfg_dw_cb),
			.cfg_stride2(cfg_dw_stride2), .cfg_in_unsigned(cfg_in_unsigned), .cfg_unsigned(cfg_dw_unsigned),
			.cfg_open_l(cfg_dw_open_l), .cfg_open_r(cfg_dw_open_r), .cfg_window(cfg_window),
			.busy(dw_busy), .err(dw_err),
			.p_axis_tdata(p_tdata), .p_axis_tvalid(cfg_depthwise && p_tvalid), .p_axis_tready(pd_tready),
			.s_axis_tdata(w_in_tdata), .s_axis_tlast(w_in_tlast), .s_axis_tvalid(w_in_tvalid), .s_axis_tready(w_in_tready),
			.x_axis_tdata(k_tdata), .x_axis_tlast(k_tlast), .x_axis_tvalid(k_tvalid), .x_axis_tready(k_tready),
			.m_axis_tdata(o_tdata), .m_axis_tlast(o_tlast), .m_axis_tvalid(o_tvalid), .m_axis_tready(o_tready)
		);
		byte_gearbox #(.IN_B(DW_PE), .OUT_B(OUT_W/8)) from_dw (
			.clk, .rst,
			.s_axis_tdata(o_tdata), .s_axis_tkeep('1), .s_axis_tlast(o_tlast), .s_axis_tvalid(o_tvalid),
			.s_axis_tready(o_tready),
			.m_axis_tdata(d_tdata), .m_axis_tkeep(), .m_axis_tlast(), .m_axis_tvalid(d_tvalid), .m_axis_tready(d_tready)
		);
	end : genDw
	else begin : genNoDw
		assign	xd_tready = 0;
		assign	pd_tready = 0;
		assign	d_tdata = '0;
		assign	d_tvalid = 0;
		assign	dw_busy = 0;
		assign	dw_err = '0;
		assign	v_tdata = '0;
		assign	v_tvalid = 0;
		assign	nd_tready = 0;
	end : genNoDw

endmodule : engine_gemm_path
