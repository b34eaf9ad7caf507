/*
 * Conformance check of balloon-sim's split ring against the kernel's own
 * definitions (include/uapi/linux/virtio_ring.h, virtio_balloon.h).
 *
 *   vring_check RING_FILE EXPECT_FILE
 *
 * RING_FILE holds the ring bytes the TypeScript driver and device wrote.
 * EXPECT_FILE holds what the test intended (one item per line):
 *   num N | align A | size S | avail_off O | used_off O | guest_bytes G
 *   avail_idx V | used_idx V | used_event V | avail_event V
 *   desc I ADDR LEN FLAGS NEXT | avail I HEAD | used I ID LEN | const NAME VALUE
 * The ring is read through struct vring set up by vring_init(); sizes and
 * offsets come from vring_size() and the structs. Prints one line per
 * mismatch and exits 1 if there was any; prints "ok N checks" otherwise.
 */
#define _DEFAULT_SOURCE
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_balloon.h>

static int failures, checks;

static void expect_eq(const char *what, unsigned long long got, unsigned long long want)
{
	checks++;
	if (got != want) {
		failures++;
		printf("MISMATCH %s: kernel view %llu, expected %llu\n", what, got, want);
	}
}

struct named { const char *name; unsigned long long value; };
static const struct named consts[] = {
	{ "VRING_DESC_F_NEXT", VRING_DESC_F_NEXT },
	{ "VRING_DESC_F_WRITE", VRING_DESC_F_WRITE },
	{ "VRING_DESC_F_INDIRECT", VRING_DESC_F_INDIRECT },
	{ "VRING_USED_F_NO_NOTIFY", VRING_USED_F_NO_NOTIFY },
	{ "VRING_AVAIL_F_NO_INTERRUPT", VRING_AVAIL_F_NO_INTERRUPT },
	{ "VIRTIO_RING_F_INDIRECT_DESC", VIRTIO_RING_F_INDIRECT_DESC },
	{ "VIRTIO_RING_F_EVENT_IDX", VIRTIO_RING_F_EVENT_IDX },
	{ "VIRTIO_BALLOON_F_MUST_TELL_HOST", VIRTIO_BALLOON_F_MUST_TELL_HOST },
	{ "VIRTIO_BALLOON_F_STATS_VQ", VIRTIO_BALLOON_F_STATS_VQ },
	{ "VIRTIO_BALLOON_F_DEFLATE_ON_OOM", VIRTIO_BALLOON_F_DEFLATE_ON_OOM },
	{ "VIRTIO_BALLOON_F_FREE_PAGE_HINT", VIRTIO_BALLOON_F_FREE_PAGE_HINT },
	{ "VIRTIO_BALLOON_F_PAGE_POISON", VIRTIO_BALLOON_F_PAGE_POISON },
	{ "VIRTIO_BALLOON_F_REPORTING", VIRTIO_BALLOON_F_REPORTING },
	{ "VIRTIO_BALLOON_PFN_SHIFT", VIRTIO_BALLOON_PFN_SHIFT },
	{ "sizeof(vring_desc)", sizeof(struct vring_desc) },
	{ "sizeof(vring_used_elem)", sizeof(struct vring_used_elem) },
	{ "sizeof(virtio_balloon_config)", sizeof(struct virtio_balloon_config) },
	{ "offsetof(virtio_balloon_config,num_pages)", offsetof(struct virtio_balloon_config, num_pages) },
	{ "offsetof(virtio_balloon_config,actual)", offsetof(struct virtio_balloon_config, actual) },
	{ "offsetof(virtio_balloon_config,free_page_hint_cmd_id)", offsetof(struct virtio_balloon_config, free_page_hint_cmd_id) },
	{ "offsetof(virtio_balloon_config,poison_val)", offsetof(struct virtio_balloon_config, poison_val) },
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s RING_FILE EXPECT_FILE\n", argv[0]);
		return 2;
	}
	FILE *ef = fopen(argv[2], "r");
	if (!ef) { perror(argv[2]); return 2; }
	unsigned int num = 0;
	unsigned long align = 0;
	char key[128];
	/* num and align come first: the ring cannot be mapped without them. */
	if (fscanf(ef, "num %u\nalign %lu\n", &num, &align) != 2 || num == 0 || (num & (num - 1)) || num > 32768) {
		fprintf(stderr, "bad expect header\n");
		return 2;
	}
	unsigned size = vring_size(num, align);
	size_t cap = (size + 4095) & ~4095UL;
	unsigned char *buf = aligned_alloc(4096, cap);
	if (!buf) return 2;
	memset(buf, 0xee, cap);
	FILE *rf = fopen(argv[1], "rb");
	if (!rf) { perror(argv[1]); return 2; }
	size_t got = fread(buf, 1, cap, rf);
	fclose(rf);
	expect_eq("ring file bytes == vring_size()", got, size);

	struct vring vr;
	vring_init(&vr, num, buf, align);
	unsigned long long a, b, c, d, e;
	char name[256];
	while (fscanf(ef, "%127s", key) == 1) {
		char what[320];
		if (!strcmp(key, "size") && fscanf(ef, "%llu", &a) == 1) expect_eq("vring_size(num, align)", size, a);
		else if (!strcmp(key, "avail_off") && fscanf(ef, "%llu", &a) == 1) expect_eq("avail offset (vring_init)", (unsigned char *)vr.avail - buf, a);
		else if (!strcmp(key, "used_off") && fscanf(ef, "%llu", &a) == 1) expect_eq("used offset (vring_init)", (unsigned char *)vr.used - buf, a);
		else if (!strcmp(key, "guest_bytes") && fscanf(ef, "%llu", &a) == 1) {
			/* every descriptor the driver wrote lies inside guest memory */
			for (unsigned i = 0; i < num; i++) {
				uint64_t addr = le64toh(vr.desc[i].addr);
				uint32_t len = le32toh(vr.desc[i].len);
				if (len) {
					snprintf(what, sizeof(what), "desc[%u] inside guest memory", i);
					expect_eq(what, addr + len <= a, 1);
				}
			}
		}
		else if (!strcmp(key, "avail_idx") && fscanf(ef, "%llu", &a) == 1) expect_eq("avail->idx", le16toh(vr.avail->idx), a);
		else if (!strcmp(key, "used_idx") && fscanf(ef, "%llu", &a) == 1) expect_eq("used->idx", le16toh(vr.used->idx), a);
		else if (!strcmp(key, "avail_flags") && fscanf(ef, "%llu", &a) == 1) expect_eq("avail->flags", le16toh(vr.avail->flags), a);
		else if (!strcmp(key, "used_flags") && fscanf(ef, "%llu", &a) == 1) expect_eq("used->flags", le16toh(vr.used->flags), a);
		else if (!strcmp(key, "used_event") && fscanf(ef, "%llu", &a) == 1) expect_eq("vring_used_event()", le16toh(vring_used_event(&vr)), a);
		else if (!strcmp(key, "avail_event") && fscanf(ef, "%llu", &a) == 1) expect_eq("vring_avail_event()", le16toh(vring_avail_event(&vr)), a);
		else if (!strcmp(key, "desc") && fscanf(ef, "%llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) == 5 && a < num) {
			snprintf(what, sizeof(what), "desc[%llu].addr", a); expect_eq(what, le64toh(vr.desc[a].addr), b);
			snprintf(what, sizeof(what), "desc[%llu].len", a); expect_eq(what, le32toh(vr.desc[a].len), c);
			snprintf(what, sizeof(what), "desc[%llu].flags", a); expect_eq(what, le16toh(vr.desc[a].flags), d);
			snprintf(what, sizeof(what), "desc[%llu].next", a); expect_eq(what, le16toh(vr.desc[a].next), e);
		}
		else if (!strcmp(key, "avail") && fscanf(ef, "%llu %llu", &a, &b) == 2 && a < num) {
			snprintf(what, sizeof(what), "avail->ring[%llu]", a); expect_eq(what, le16toh(vr.avail->ring[a]), b);
		}
		else if (!strcmp(key, "used") && fscanf(ef, "%llu %llu %llu", &a, &b, &c) == 3 && a < num) {
			snprintf(what, sizeof(what), "used->ring[%llu].id", a); expect_eq(what, le32toh(vr.used->ring[a].id), b);
			snprintf(what, sizeof(what), "used->ring[%llu].len", a); expect_eq(what, le32toh(vr.used->ring[a].len), c);
		}
		else if (!strcmp(key, "const") && fscanf(ef, "%255s %llu", name, &a) == 2) {
			int found = 0;
			for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
				if (!strcmp(consts[i].name, name)) { expect_eq(name, consts[i].value, a); found = 1; }
			}
			if (!found) { printf("UNKNOWN constant %s\n", name); failures++; }
		}
		else { printf("BAD expect line at key '%s'\n", key); failures++; break; }
	}
	fclose(ef);
	free(buf);
	if (failures) { printf("%d of %d checks failed\n", failures, checks); return 1; }
	printf("ok %d checks\n", checks);
	return 0;
}
