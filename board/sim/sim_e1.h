/*
 * sim_e1.h - the simulated CallBox E1 card: 1..8 spans, each an e1framer behind the
 * register map of drivers/e1regs.h, a receive elastic store, a line output queue and
 * the TDM DMA area. The drivers reach it through sim_e1_regio(); the line side (the
 * Unix sockets, pumped by Python) through the sim_e1_line_* calls.
 *
 * Time: sim_e1_tick(n) advances the card's oscillator by n frames (125 us each). Per
 * frame of the oscillator the DMA moves one frame of every span (rx ring <- elastic
 * store, tx ring -> framer) and every span in internal timing transmits one line frame.
 * A span in line timing transmits exactly one line frame per line frame received
 * (inside sim_e1_line_rx). A span that receives no frame for its LOS window of
 * oscillator time raises LOS. Recommended order per tick: line_rx (what arrived),
 * tick(n), line_tx (what to send). The elastic store starts half full (128 frames), so
 * the order and batch sizes up to 128 frames do not cause slips; a rate difference does
 * (one slip per frame repeated or deleted).
 * Buffers are caller-owned. Not thread-safe: one thread drives a card.
 */
#ifndef CALLBOX_SIM_E1_H
#define CALLBOX_SIM_E1_H

#include <stdint.h>

struct regio;
struct e1f;
typedef struct sim_e1 sim_e1_t;

enum {
	SIM_E1_ES_DEPTH = 256,   /* elastic stores, frames; delivering from half full */
	SIM_E1_TXQ = 2048,       /* frames the line output queue holds before dropping */
};

sim_e1_t *sim_e1_new(int nspans);          /* NULL if nspans is not 1..8 */
void sim_e1_free(sim_e1_t *c);
const struct regio *sim_e1_regio(sim_e1_t *c);
int sim_e1_nspans(const sim_e1_t *c);

/* Line -> card: noctets of line data; whole frames are taken, a trailing partial frame
 * is dropped and counted (E1R_CNT_RUNT). Returns frames taken or -EINVAL. */
int sim_e1_line_rx(sim_e1_t *c, int span, const uint8_t *octets, int noctets);
/* Card -> line: up to maxframes frames (32 octets each) into frames; returns the count. */
int sim_e1_line_tx(sim_e1_t *c, int span, uint8_t *frames, int maxframes);
int sim_e1_line_tx_pending(const sim_e1_t *c, int span);
/* Frames dropped because nobody took them from the line output queue. */
uint32_t sim_e1_line_tx_dropped(const sim_e1_t *c, int span);

/* Advance the card oscillator by nframes. Returns 0 or -EINVAL. */
int sim_e1_tick(sim_e1_t *c, int nframes);

/* The span's framer, for inspection in tests (owned by the card). */
struct e1f *sim_e1_framer(sim_e1_t *c, int span);

#endif
