// AXI4-Lite slave register block for a unit with start / busy / err control (docs/unit_regs.md). The register map
// is defined in Python (sw/samfpga/backends/unit_regs.py); the per-unit wrapper (<unit>_axil.sv, generated from it)
// sets N_CFG, CFG_MASK and connects cfg / start / busy / err.
//
//   0x00 CTRL    bit 0 ap_start: write 1 -> pending until !busy, then a one-cycle `start` pulse; reads 1 while pending
//                bit 1 ap_done (RO): sticky, set when a started frame ends (unit not busy after the pulse);
//                      cleared by reading CTRL (clear-on-read; a done in the cycle of the read is kept)
//                bit 2 ap_idle (RO): no start pending, no frame running, unit not busy
//   0x04 STATUS  (RO) bits [ERR_W-1:0] err, bit 8 busy
//   0x10 + 4k    cfg word k (RW, reset 0, CFG_MASK bits implemented, byte strobes honoured)
// CFG_LATCH = 1: `cfg` is a copy of the registers taken when a pending start fires, and the `start` pulse follows one
// cycle later, so the unit sees that configuration for its whole frame whatever the host writes meanwhile: the host
// may write the next frame's registers (and its ap_start, pending until the unit is not busy) while a frame runs,
// once CTRL shows the start taken (bit 0 read as 0). CFG_LATCH = 0: `cfg` is the registers themselves.
// Reads of unmapped offsets (0x08, 0x0C, past the last cfg word) and writes to unmapped offsets or to STATUS answer
// SLVERR (nothing changes); every other access answers OKAY (writes to CTRL's RO bits are ignored). Handshakes: AW and W are taken independently (either order, or together); one write and one
// read outstanding (BVALID / RVALID held until taken, no new AW/W/AR accepted meanwhile).

module axil_regs #(
	int unsigned  ADDR_BITS = 6,
	int unsigned  N_CFG = 1,
	logic [32*N_CFG-1:0]  CFG_MASK = '1,
	int unsigned  ERR_W = 2,
	// 1: the configuration registers read back (masked); 0: they read as 0 with OKAY, so synthesis keeps no
	// read-back mux (about 1,500 LUT of the engine's path: bench/results/engine_path_glue_synth.json)
	bit  CFG_READ = 1,
	// 1: the configuration latched when a start fires (above)
	bit  CFG_LATCH = 0
)(
	input	logic  clk,
	input	logic  rst,

	input	logic [ADDR_BITS-1:0]  s_axil_awaddr,
	input	logic [2:0]  s_axil_awprot,
	input	logic  s_axil_awvalid,
	output	logic  s_axil_awready,
	input	logic [31:0]  s_axil_wdata,
	input	logic [3:0]  s_axil_wstrb,
	input	logic  s_axil_wvalid,
	output	logic  s_axil_wready,
	output	logic [1:0]  s_axil_bresp,
	output	logic  s_axil_bvalid,
	input	logic  s_axil_bready,
	input	logic [ADDR_BITS-1:0]  s_axil_araddr,
	input	logic [2:0]  s_axil_arprot,
	input	logic  s_axil_arvalid,
	output	logic  s_axil_arready,
	output	logic [31:0]  s_axil_rdata,
	output	logic [1:0]  s_axil_rresp,
	output	logic  s_axil_rvalid,
	input	logic  s_axil_rready,

	output	logic [32*N_CFG-1:0]  cfg,
	output	logic  start,
	input	logic  busy,
	input	logic [ERR_W-1:0]  err
);
	localparam logic [1:0]  OKAY = 2'b00, SLVERR = 2'b10;
	localparam int unsigned  WB = ADDR_BITS - 2;	// word index bits

	if(ADDR_BITS < 4 || 2**(ADDR_BITS-2) < 4 + N_CFG)  $error("ADDR_BITS too small for the register map");
	if(ERR_W > 8)  $error("ERR_W must be <= 8");

	logic [31:0]  Cfg[N_CFG];
	logic  StartPend = 0, Running = 0, Done = 0;
	// the start as the unit gets it: when the pending start fires, or (CFG_LATCH) one cycle later
	logic  Fired = 0;
	uwire  fire = StartPend && !busy && !Fired;
	if(CFG_LATCH) begin : genLatch
		logic [32*N_CFG-1:0]  CfgRun = '0;
		always_ff @(posedge clk) begin
			// masked here too (writes are masked already): a bit no field holds then drives nothing, and synthesis
			// drops its flip-flop
			if(fire)  for(int unsigned  k = 0; k < N_CFG; k++)  CfgRun[32*k +: 32] <= Cfg[k] & CFG_MASK[32*k +: 32];
		end
		assign	cfg = CfgRun;
		assign	start = Fired;
	end : genLatch
	else begin : genDirect
		always_comb begin
			for(int unsigned  k = 0; k < N_CFG; k++)  cfg[32*k +: 32] = Cfg[k] & CFG_MASK[32*k +: 32];
		end
		assign	start = fire;
	end : genDirect
	uwire  idle = !StartPend && !Fired && !Running && !busy;

	function automatic logic is_cfg(logic [WB-1:0] a);
		return a >= 4 && a < WB'(4 + N_CFG);
	endfunction

	//=======================================================================
	// Write channel

	logic  AwHave = 0, WHave = 0, BValid = 0;
	logic [WB-1:0]  AwWord;
	logic [31:0]  WData;
	logic [3:0]  WStrb;
	logic [1:0]  BResp;
	assign	s_axil_awready = !AwHave && !BValid;
	assign	s_axil_wready = !WHave && !BValid;
	assign	s_axil_bvalid = BValid;
	assign	s_axil_bresp = BResp;

	// the write happens in the cycle both halves are held
	uwire  wr = AwHave && WHave && !BValid;
	uwire  wr_start = wr && AwWord == 0 && WStrb[0] && WData[0];

	// read channel state (below) used for clear-on-read
	logic  RValid = 0;
	uwire  rd = s_axil_arvalid && !RValid;
	uwire [WB-1:0]  ar_word = s_axil_araddr[ADDR_BITS-1:2];

	always_ff @(posedge clk) begin
		if(rst) begin
			AwHave <= 0;
			WHave <= 0;
			BValid <= 0;
			StartPend <= 0;
			Fired <= 0;
			Running <= 0;
			Done <= 0;
			for(int unsigned  k = 0; k < N_CFG; k++)  Cfg[k] <= '0;
		end
		else begin
			if(s_axil_awvalid && s_axil_awready) begin
				AwHave <= 1;
				AwWord <= s_axil_awaddr[ADDR_BITS-1:2];
			end
			if(s_axil_wvalid && s_axil_wready) begin
				WHave <= 1;
				WData <= s_axil_wdata;
				WStrb <= s_axil_wstrb;
			end
			if(wr) begin
				AwHave <= 0;
				WHave <= 0;
				BValid <= 1;
				BResp <= AwWord == 0 || is_cfg(AwWord)? OKAY : SLVERR;
				if(is_cfg(AwWord)) begin
					for(int unsigned  b = 0; b < 4; b++) begin
						if(WStrb[b])  Cfg[AwWord - 4][8*b +: 8] <= WData[8*b +: 8] & CFG_MASK[32*(AwWord - 4) + 8*b +: 8];
					end
				end
			end
			if(BValid && s_axil_bready)  BValid <= 0;

			// control: a pending start fires when the unit is not busy; done when the unit is not busy after it
			if(wr_start)  StartPend <= 1;
			Fired <= CFG_LATCH && fire;
			if(fire)  StartPend <= 0;
			if(start)  Running <= 1;
			else if(Running && !busy)  Running <= 0;
			if(rd && ar_word == 0)  Done <= 0;
			if(Running && !busy)  Done <= 1;	// after the clear: a done in the cycle of a CTRL read is kept
		end
	end

	//=======================================================================
	// Read channel

	logic [31:0]  RData;
	logic [1:0]  RResp;
	assign	s_axil_arready = !RValid;
	assign	s_axil_rvalid = RValid;
	assign	s_axil_rdata = RData;
	assign	s_axil_rresp = RResp;

	always_ff @(posedge clk) begin
		if(rst)  RValid <= 0;
		else begin
			if(rd) begin
				RValid <= 1;
				RResp <= OKAY;
				RData <= '0;
				if(ar_word == 0)  RData <= {29'b0, idle, Done, StartPend};
				else if(ar_word == 1)  RData <= {23'b0, busy, 8'(err)};
				else if(is_cfg(ar_word))  RData <= CFG_READ? Cfg[ar_word - 4] & CFG_MASK[32*(ar_word - 4) +: 32] : '0;
				else  RResp <= SLVERR;
			end
			else if(RValid && s_axil_rready)  RValid <= 0;
		end
	end
endmodule
