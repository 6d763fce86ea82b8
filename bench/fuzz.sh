#!/bin/sh
# bench/fuzz.sh SECONDS [NAME...] - build the libFuzzer harnesses in
# tests/fuzz/ with clang (ASan + UBSan, outside the autotools build) and
# run each for SECONDS (default 60) on one core, starting from the seed
# corpus in tests/fuzz/corpus/NAME/.  New inputs go to a scratch corpus in
# $FUZZ_DIR (default /tmp/tl-fuzz), never into the repository; a crash,
# leak or timeout leaves its input there (crash-*, leak-*, timeout-*) and
# makes the script exit 1.  Prints executions and coverage per harness.
#   NAME: cifar, shard, safetensors, keras, image, pickle, csv, pth (default: all eight; keras needs
#   libhdf5-dev, and runs the parse the sandboxed child runs, in-process,
#   seeded from tests/fixtures/keras-*.h5, with libhdf5's own findings
#   suppressed by tests/fuzz/keras-{lsan,asan}.supp)
set -eu
secs=${1:-60}
shift || true
names=${*:-"cifar shard safetensors keras image pickle csv pth"}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_DIR:-/tmp/tl-fuzz}
CC=${CC:-clang}
mkdir -p "$out"
flags="-g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I$top/src"
libs="-larchive -lz -lxxhash -ljansson -lm -pthread"
src_common="$top/src/err.c $top/src/afile.c $top/src/data/image.c $top/src/data/f16.c
            $out/cpu.o"
# clang 14 does not know __builtin_cpu_supports("f16c"): the CPU detector
# (not a parser) is compiled by gcc, without instrumentation
gcc -O1 -std=gnu11 -I"$top/src" -c "$top/src/cpu/cpu.c" -o "$out/cpu.o"
# keras.c reads config.h for TL_HAVE_HDF5; this build has it
printf '#define TL_HAVE_HDF5 1\n' >"$out/config.h"
h5=$(pkg-config --cflags --libs hdf5 2>/dev/null || pkg-config --cflags --libs hdf5-serial 2>/dev/null ||
	echo "-I/usr/include/hdf5/serial -lhdf5_serial")
status=0
for n in $names; do
	case $n in
	cifar) srcs="$top/src/data/cifar.c $top/src/infile.c" ;;
	shard) srcs="$top/src/data/shard.c $top/src/infile.c" ;;
	safetensors) srcs="$top/src/nn/safetensors.c $top/src/infile.c" ;;
	# keras: the parse the sandboxed child runs (h5parse.c) over a memory
	# image, the parent's validation (h5file.c) and the mappings
	keras) srcs="$top/src/nn/keras.c $top/src/nn/h5parse.c $top/src/nn/h5file.c
	             $top/src/nn/md5.c $top/src/nn/sandbox.c $top/src/infile.c
	             $top/src/nn/safetensors.c -I$out $h5" ;;
	# image: PNG, JPEG and PPM decoding (data/imgio.c) under a 4 Mpx cap
	image) srcs="$top/src/data/imgio.c $top/src/infile.c -lpng -ljpeg" ;;
	# pickle: the restricted unpickler (data/pickle.c) under small limits
	pickle) srcs="$top/src/data/pickle.c $top/src/infile.c" ;;
	# csv: the strict CSV reader of tlpack --labels (data/csv.c) and the
	# CSV-list source on it (data/src_csv.c; source.c lists every source)
	csv) srcs="$top/src/data/csv.c $top/src/data/src_csv.c $top/src/data/source.c
	           $top/src/data/src_folder.c $top/src/data/src_archive.c $top/src/data/src_cifar.c
	           $top/src/data/src_pycifar.c $top/src/data/cifar.c $top/src/data/pickle.c
	           $top/src/data/shard.c
	           $top/src/infile.c" ;;
	# pth: torch.save files, zip (libarchive) or legacy, into tensors (nn/pth.c)
	pth) srcs="$top/src/nn/pth.c $top/src/data/pickle.c $top/src/nn/safetensors.c
	           $top/src/infile.c" ;;
	*) echo "fuzz.sh: unknown harness $n (expected cifar, shard, safetensors, keras, image, pickle, csv, pth)" >&2; exit 2 ;;
	esac
	bin=$out/fuzz_$n
	# shellcheck disable=SC2086
	$CC $flags -o "$bin" "$top/tests/fuzz/fuzz_$n.c" $srcs $src_common $libs
	mkdir -p "$out/corpus_$n" "$out/art_$n"
	san_env=""
	if [ "$n" = keras ]; then
		# seeds: the test fixtures small enough for -max_len (good files
		# and every kind of hostile one)
		for f in "$top"/tests/fixtures/keras-*.h5; do
			[ "$(wc -c <"$f")" -le 131072 ] && cp "$f" "$out/corpus_$n/seed-$(basename "$f")"
		done
		# libhdf5's own findings, suppressed by name (reasons in the files);
		# an allocation over 1.5 GiB returns NULL as under the sandbox's
		# address-space limit, instead of ending the run
		san_env="LSAN_OPTIONS=suppressions=$top/tests/fuzz/keras-lsan.supp:print_suppressions=0
		         ASAN_OPTIONS=suppressions=$top/tests/fuzz/keras-asan.supp:allocator_may_return_null=1:max_allocation_size_mb=1536"
	fi
	echo "== fuzz_$n: $secs s"
	set +e
	# shellcheck disable=SC2086
	env FUZZ_DIR="$out" $san_env nice -n 10 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=131072 -print_final_stats=1 -artifact_prefix="$out/art_$n/" \
		"$out/corpus_$n" "$top/tests/fuzz/corpus/$n" >"$out/log_$n" 2>&1
	rc=$?
	set -e
	grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$out/log_$n" | tail -1
	grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/log_$n" || true
	if [ "$rc" -ne 0 ] || ls "$out/art_$n" | grep -q .; then
		echo "fuzz_$n: FOUND A PROBLEM (exit $rc), inputs in $out/art_$n:" >&2
		ls "$out/art_$n" >&2
		status=1
	fi
done
exit $status
