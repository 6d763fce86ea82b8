# embed.awk - turn opencl/NAME.cl files into C string literals (src/ocl/kernels.c),
# one entry per file, each opening with #line 1 "NAME" so that compiler
# messages name the .cl file and line.  Usage: awk -f embed.awk a.cl b.cl
function esc(s,    n, i, parts, out) {
	n = split(s, parts, "\\")
	out = parts[1]
	for (i = 2; i <= n; i++)
		out = out "\\\\" parts[i]
	n = split(out, parts, "\"")
	out = parts[1]
	for (i = 2; i <= n; i++)
		out = out "\\\"" parts[i]
	return out
}
BEGIN {
	print "/* generated from opencl/NAME.cl by opencl/embed.awk: do not edit */"
	print "#include \"ocl/kernels.h\""
	print ""
	print "const tl_ocl_source tl_ocl_sources[] = {"
}
FNR == 1 {
	if (NR > 1)
		print "\t},"
	name = FILENAME
	sub(/.*\//, "", name)
	print "\t{\"" name "\","
	print "\t \"#line 1 \\\"" name "\\\"\\n\""
}
{ print "\t \"" esc($0) "\\n\"" }
END {
	if (NR > 0)
		print "\t},"
	print "\t{0, 0},"
	print "};"
}
