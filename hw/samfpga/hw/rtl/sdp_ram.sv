// Simple dual-port RAM with a registered read (page_permute.sv's page, dw_window.sv's banks); RAM_STYLE as a literal
// attribute per style (tools differ in whether they take a parameter there): "block", "distributed", "ultra" or
// "auto" (the tool decides).
module sdp_ram #(
	int unsigned  WIDTH = 8,
	int unsigned  DEPTH = 2,
	int unsigned  AB = 1,
	parameter  RAM_STYLE = "auto"
)(
	input	logic  clk,
	input	logic  we,
	input	logic [AB-1:0]  waddr,
	input	logic [WIDTH-1:0]  wdata,
	input	logic  re,
	input	logic [AB-1:0]  raddr,
	output	logic [WIDTH-1:0]  rdata
);
	if(RAM_STYLE == "block") begin : genBlock
		(* ram_style = "block" *) logic [WIDTH-1:0]  Mem [DEPTH];
		always_ff @(posedge clk) begin
			if(we)  Mem[waddr] <= wdata;
			if(re)  rdata <= Mem[raddr];
		end
	end : genBlock
	else if(RAM_STYLE == "distributed") begin : genDist
		(* ram_style = "distributed" *) logic [WIDTH-1:0]  Mem [DEPTH];
		always_ff @(posedge clk) begin
			if(we)  Mem[waddr] <= wdata;
			if(re)  rdata <= Mem[raddr];
		end
	end : genDist
	else if(RAM_STYLE == "ultra") begin : genUltra
		(* ram_style = "ultra" *) logic [WIDTH-1:0]  Mem [DEPTH];
		always_ff @(posedge clk) begin
			if(we)  Mem[waddr] <= wdata;
			if(re)  rdata <= Mem[raddr];
		end
	end : genUltra
	else begin : genAuto
		logic [WIDTH-1:0]  Mem [DEPTH];
		always_ff @(posedge clk) begin
			if(we)  Mem[waddr] <= wdata;
			if(re)  rdata <= Mem[raddr];
		end
	end : genAuto
endmodule : sdp_ram
