/* mkcifar - write a synthetic CIFAR fixture for the CLI tests.
 * usage: mkcifar OUT [--c100] [--plain] [--dir] [--no-meta] [--odd-order]
 *                    [--per N] [--test N] [--missing N] [--extra N]
 *                    [--bad-label R] [--dup]
 *        mkcifar OUT.ppm --ppm MEMBER RECORD   (the expected 32x32 image) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: mkcifar OUT [options]\n");
		return 2;
	}
	if (argc == 5 && !strcmp(argv[2], "--ppm")) {
		int m = atoi(argv[3]), r = atoi(argv[4]);
		FILE *f = fopen(argv[1], "wb");
		if (!f)
			return 1;
		fprintf(f, "P6\n32 32\n255\n");
		for (int i = 0; i < 1024; i++)
			for (int c = 0; c < 3; c++)
				fputc(fixture_pixel(m, r, c * 1024 + i), f);
		return fclose(f) ? 1 : 0;
	}
	fixture_opts o;
	fixture_defaults(&o);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(a, "--c100")) o.dataset = 100;
		else if (!strcmp(a, "--plain")) o.gzip = 0;
		else if (!strcmp(a, "--dir")) o.as_dir = 1;
		else if (!strcmp(a, "--no-meta")) o.with_meta = 0;
		else if (!strcmp(a, "--odd-order")) o.odd_order = 1;
		else if (!strcmp(a, "--dup")) o.dup_batch = 1;
		else if (!strcmp(a, "--per")) o.per_batch = atoi(v), i++;
		else if (!strcmp(a, "--test")) o.test_count = atoi(v), i++;
		else if (!strcmp(a, "--missing")) o.skip_batch = atoi(v), i++;
		else if (!strcmp(a, "--extra")) o.extra_bytes = atoi(v), i++;
		else if (!strcmp(a, "--bad-label")) o.bad_label_at = atoi(v), i++;
		else {
			fprintf(stderr, "mkcifar: unknown option %s\n", a);
			return 2;
		}
	}
	return fixture_write(argv[1], &o) ? 1 : 0;
}
