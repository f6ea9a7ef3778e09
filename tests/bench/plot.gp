# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# ns/packet against rule count, from the rules.dat bench_pkt writes:
#   gnuplot -e "dir='bench-results'" tests/bench/plot.gp  ->  dir/rules.png
# rules.dat columns: rules warm_allow warm_deny cold_allow cold_deny
#                    xf_hit4 xf_miss4 xdp_drop xf_miss4_cold
if (!exists("dir")) dir = "bench-results"
data = dir . "/rules.dat"

# The references are the same on every row: take them once, draw them
# across the whole width.
stats data using 6 nooutput prefix "XFH"
stats data using 7 nooutput prefix "XFM"
stats data using 8 nooutput prefix "DROP"
stats data using 9 nooutput prefix "XFC"

set terminal pngcairo size 960,600 font "sans,10"
set output dir . "/rules.png"
set title "Portcullis xdp\\_ingress: per-packet cost vs blocklist size (BPF\\_PROG\\_TEST\\_RUN)"
set xlabel "CIDRs in the blocklist"
set ylabel "ns / packet"
set logscale x 10
set logscale y 10
set format x "10^{%L}"
set xrange [0.7:1.5e6]
set yrange [1:*]
set grid xtics ytics mxtics mytics
set key outside right top

plot data using 1:2 with linespoints lw 2 pt 7 title "warm, allow", \
     data using 1:3 with linespoints lw 2 pt 5 title "warm, blocklist hit", \
     data using 1:4 with linespoints lw 2 pt 6 dt 2 title "cold, allow (a new flow each packet)", \
     data using 1:5 with linespoints lw 2 pt 4 dt 2 title "cold, blocklist hit", \
     XFH_mean with lines lw 2 lc rgb "#8b0000" title "xdp-filter, IPv4 hit (warm)", \
     XFM_mean with lines lw 2 dt 3 lc rgb "#8b0000" title "xdp-filter, IPv4 miss (warm)", \
     XFC_mean with lines lw 2 dt 2 lc rgb "#cc6666" title "xdp-filter, IPv4 miss (cold)", \
     DROP_mean with lines lw 2 lc rgb "black" title "trivial XDP\\_DROP (floor)"
