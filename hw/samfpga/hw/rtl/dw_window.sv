// The depthwise unit's sliding window at run-time shape: 3 x 3 windows, stride 1 or 2, over padded strips.
//
// Input: `cfg_strips` strips one after another, each a padded map of cfg_h rows x cfg_w columns (what strip_pad.sv
// emits: the strip's columns with its halo or padding, its padding rows), row-major, each pixel cfg_cb beats of BW
// bits (a group of channels per beat), tlast on a strip's last beat.
// Output: per strip, for each output row oy < OH, column ox < OW, beat g < cfg_cb, one beat of 9 words of BW bits:
// word ky * 3 + kx is the pixel at row oy * s + ky, column ox * s + kx, beat g (OH = (cfg_h - 3) / s + 1, OW
// likewise) - the order of FINN's depthwise VVAU at SIMD = 9 (element s * PE + p: kernel position s of channel p).
// tlast on a strip's last beat.
//
// The line buffer: 12 banks, 4 row slots (row r in slot r mod 4) x 3 column phases (column x in phase x mod 3,
// at address (x / 3) * cfg_cb + g), so a window's 9 words come from 9 different banks in one cycle and an output
// beat leaves every cycle at stride 1 (every other cycle at stride 2, where each output column takes two new input
// columns). The fourth row slot lets the next input row arrive while three are read: input row r is taken while
// r <= top + 3 (top: the first row of the output row being read), and output row oy is read once rows up to
// top + 2 are complete. A strip's input is taken only when the previous strip's outputs are all out.
// Capacity: ceil(cfg_w / 3) * cfg_cb <= DEPTH words per bank (narrower strips take more beats per pixel).
//
// Configuration is sampled at `start` (a pulse while !busy). err[1]: bad configuration (h or w below 3, cb or
// strips 0, over capacity): nothing is taken; err[0]: an input tlast off a strip's last beat or missing there.
// Both sticky until the next start.

module dw_window #(
	int unsigned  BW = 128,	// bits per beat
	int unsigned  W_MAX = 34,	// columns of a padded strip, at CB_MAX beats per pixel
	int unsigned  CB_MAX = 4,	// beats per pixel, at W_MAX columns
	int unsigned  DIM_BITS = 12,
	parameter  RAM_STYLE = "auto",	// the banks' (sdp_ram.sv): "ultra" where the plan's memory model puts them in URAM

	localparam int unsigned  DEPTH = (W_MAX + 2) / 3 * CB_MAX,
	localparam int unsigned  AB = DEPTH > 1? $clog2(DEPTH) : 1
)(
	input	logic  clk,
	input	logic  rst,

	input	logic  start,
	input	logic [DIM_BITS-1:0]  cfg_h,
	input	logic [DIM_BITS-1:0]  cfg_w,
	input	logic [DIM_BITS-1:0]  cfg_cb,
	input	logic [DIM_BITS-1:0]  cfg_strips,
	input	logic  cfg_stride2,
	output	logic  busy,
	output	logic [1:0]  err,

	input	logic [BW-1:0]  s_axis_tdata,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,

	output	logic [9*BW-1:0]  m_axis_tdata,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	localparam int unsigned  DB = DIM_BITS;
	localparam int unsigned  RB = DIM_BITS + 2;	// row arithmetic (top + 3)

	logic  Busy = 0;
	logic  ErrCfg = 0, ErrLast = 0;
	logic [DB-1:0]  H, W, CB, Strips, OH, OW;
	logic  S2;
	logic [DB-1:0]  Strip;	// current strip
	assign	busy = Busy;
	assign	err = {ErrCfg, ErrLast};

	// ---- configuration
	uwire [DB-1:0]  oh_w = cfg_stride2? DB'((cfg_h - 3) >> 1) + 1 : cfg_h - 2;
	uwire [DB-1:0]  ow_w = cfg_stride2? DB'((cfg_w - 3) >> 1) + 1 : cfg_w - 2;
	uwire [2*DB-1:0]  need = (2*DB)'((cfg_w + 2) / 3) * (2*DB)'(cfg_cb);
	uwire  cfg_bad = cfg_h < 3 || cfg_w < 3 || cfg_cb == 0 || cfg_strips == 0 || need > (2*DB)'(DEPTH);

	// ---- strip state: both sides done -> next strip
	logic  InDone, OutDone;	// this strip's input all taken / its reads all issued

	// ---- write side: row WRow (slot WSlot), column WX = 3 * WQ + WPh, beat WG; WAddr = WQ * CB + WG
	logic [RB-1:0]  WRow;
	logic [1:0]  WSlot;
	logic [DB-1:0]  WX, WG;
	logic [1:0]  WPh;
	logic [AB-1:0]  WBase;	// WQ * CB
	logic [RB-1:0]  Top;	// first input row of the output row being read
	uwire  w_last_g = WG == CB - 1;
	uwire  w_last_x = WX == W - 1;
	uwire  w_last_row = WRow == RB'(H - 1);
	assign	s_axis_tready = Busy && !InDone && (OutDone || WRow <= Top + 3);
	uwire  w_take = s_axis_tvalid && s_axis_tready;
	uwire [AB-1:0]  waddr = WBase + AB'(WG);

	// ---- read side: output row OY (its rows Top.. in slots RSlot..), column OX (x0 = OX * s = 3 * the base's
	// column + RPh), beat RG
	logic [DB-1:0]  OY, OX, RG;
	logic [1:0]  RSlot, RPh;
	logic [AB-1:0]  RBase;	// (x0 / 3) * CB
	uwire  rows_ready = InDone || WRow > Top + 2;
	uwire  r_last_g = RG == CB - 1;
	uwire  r_last_x = OX == OW - 1;
	uwire  r_last_y = OY == OH - 1;

	// read pipeline: issue -> bank outputs (V1) -> output register (OVld)
	logic  V1 = 0, OVld = 0;
	logic  L1;	// tlast of the beat in the banks' outputs
	logic [1:0]  Slot1, Ph1;
	uwire  move = V1 && (!OVld || m_axis_tready);
	uwire  issue = Busy && !OutDone && rows_ready && (!V1 || move);

	// ---- the banks
	uwire [BW-1:0]  q[4][3];
	for(genvar  sl = 0; sl < 4; sl++) begin : genSlot
		for(genvar  ph = 0; ph < 3; ph++) begin : genPhase
			// a phase left of the window's first column holds its column from the next group of three
			uwire [AB-1:0]  raddr = (ph < RPh? RBase + AB'(CB) : RBase) + AB'(RG);
			sdp_ram #(.WIDTH(BW), .DEPTH(DEPTH), .AB(AB), .RAM_STYLE(RAM_STYLE)) bank (
				.clk,
				.we(w_take && WSlot == sl && WPh == ph), .waddr, .wdata(s_axis_tdata),
				.re(issue), .raddr, .rdata(q[sl][ph])
			);
		end : genPhase
	end : genSlot

	// the window's word ky * 3 + kx: row slot Slot1 + ky, phase Ph1 + kx
	logic [9*BW-1:0]  taps;
	always_comb begin
		for(int unsigned  ky = 0; ky < 3; ky++) begin
			for(int unsigned  kx = 0; kx < 3; kx++) begin
				automatic logic [1:0]  sl = Slot1 + 2'(ky);
				automatic logic [2:0]  pk = 3'(Ph1) + 3'(kx);
				automatic logic [1:0]  ph = pk >= 3? 2'(pk - 3) : 2'(pk);
				taps[(ky*3 + kx)*BW +: BW] = q[sl][ph];
			end
		end
	end

	logic [9*BW-1:0]  OData;
	logic  OLast;
	assign	m_axis_tdata = OData;
	assign	m_axis_tlast = OLast;
	assign	m_axis_tvalid = OVld;

	always_ff @(posedge clk) begin
		if(rst) begin
			Busy <= 0;
			ErrCfg <= 0;
			ErrLast <= 0;
			V1 <= 0;
			OVld <= 0;
		end
		else begin
			// output register
			if(move) begin
				OData <= taps;
				OLast <= L1;
				OVld <= 1;
			end
			else if(m_axis_tready)  OVld <= 0;
			if(issue) begin
				V1 <= 1;
				L1 <= r_last_g && r_last_x && r_last_y;
				Slot1 <= RSlot;
				Ph1 <= RPh;
			end
			else if(move)  V1 <= 0;

			if(!Busy) begin
				if(start) begin
					ErrCfg <= cfg_bad;
					ErrLast <= 0;
					H <= cfg_h;
					W <= cfg_w;
					CB <= cfg_cb;
					Strips <= cfg_strips;
					S2 <= cfg_stride2;
					OH <= oh_w;
					OW <= ow_w;
					Strip <= 0;
					Busy <= !cfg_bad;
					{InDone, OutDone} <= '0;
					{WRow, WSlot, WX, WG, WPh, WBase, Top} <= '0;
					{OY, OX, RG, RSlot, RPh, RBase} <= '0;
				end
			end
			else begin
				// write side
				if(w_take) begin
					if(s_axis_tlast != (w_last_g && w_last_x && w_last_row))  ErrLast <= 1;
					WG <= w_last_g? '0 : WG + 1;
					if(w_last_g) begin
						if(w_last_x) begin
							{WX, WPh, WBase} <= '0;
							WRow <= WRow + 1;
							WSlot <= WSlot + 1;
							if(w_last_row)  InDone <= 1;
						end
						else begin
							WX <= WX + 1;
							WPh <= WPh == 2? 0 : WPh + 1;
							if(WPh == 2)  WBase <= WBase + AB'(CB);
						end
					end
				end
				// read side: beat, then column (x0 += s), then row (top += s)
				if(issue) begin
					RG <= r_last_g? '0 : RG + 1;
					if(r_last_g) begin
						if(r_last_x) begin
							{OX, RPh, RBase} <= '0;
							OY <= OY + 1;
							Top <= Top + (S2? 2 : 1);
							RSlot <= RSlot + (S2? 2 : 1);
							if(r_last_y)  OutDone <= 1;
						end
						else begin
							OX <= OX + 1;
							// RPh + s: one or two columns on, into the next group of three past phase 2
							if(RPh + (S2? 2 : 1) >= 3) begin
								RPh <= RPh + (S2? 2 : 1) - 3;
								RBase <= RBase + AB'(CB);
							end
							else  RPh <= RPh + (S2? 2 : 1);
						end
					end
				end
				// a strip's reads all issued (their words are in the banks' output registers) and its input all
				// taken: the next strip may overwrite the banks; after the last, busy until the pipeline is empty
				if(InDone && OutDone) begin
					if(Strip + 1 != DB'(Strips)) begin
						Strip <= Strip + 1;
						{InDone, OutDone} <= '0;
						{WRow, WSlot, WX, WG, WPh, WBase, Top} <= '0;
						{OY, OX, RG, RSlot, RPh, RBase} <= '0;
					end
					else if(!V1 && !OVld)  Busy <= 0;
				end
			end
		end
	end

endmodule : dw_window
