/*
 * sim_fxo.h - the simulated CallBox FXO card: 4..8 ports, each a DAA model behind the
 * register map of drivers/fxoregs.h, plus the TDM DMA area (A-law, 8 kHz).
 *
 * Line side (what the CO line does), pumped by Python from the FXO sockets:
 *   sim_fxo_line_set()      battery voltage, polarity, ring voltage and frequency;
 *   sim_fxo_line_audio_in() audio arriving from the line (int16 linear, 8 kHz);
 *   sim_fxo_line_audio_out()audio the DAA sends to the line (int16 linear, after TX gain);
 *   sim_fxo_line_get()      hook state and loop current as the CO sees them.
 * Time: sim_fxo_tick(n) advances the card by n samples (125 us): the DAA models run
 * (ring validation, battery / polarity debounce, voltages), n samples of line audio per
 * port are consumed (silence if fewer were given) and n produced, and the DMA moves n
 * samples. Push line audio before the tick that should carry it.
 */
#ifndef CALLBOX_SIM_FXO_H
#define CALLBOX_SIM_FXO_H

#include <stdint.h>

struct regio;
typedef struct sim_fxo sim_fxo_t;

struct sim_fxo_line {
	int32_t battery_mv;   /* CO battery magnitude in mV (48000 typical; 0 = no battery / cable pulled) */
	int32_t reversed;     /* 1: polarity reversed */
	int32_t ring_vrms;    /* ring voltage, V rms (0 = not ringing; 75 typical) */
	int32_t ring_hz;      /* ring frequency, Hz (25 typical) */
};

struct sim_fxo_line_state {
	int32_t offhook;      /* DAA hook switch */
	int32_t loop_ma;      /* loop current in mA */
	int32_t line_dv;      /* tip-ring DC voltage at the DAA in 0.1 V */
};

enum {
	SIM_FXO_AUDIO_FIFO = 4096,  /* samples buffered per port and direction */
};

sim_fxo_t *sim_fxo_new(int nports);        /* NULL if nports is not 1..8 */
void sim_fxo_free(sim_fxo_t *c);
const struct regio *sim_fxo_regio(sim_fxo_t *c);
int sim_fxo_nports(const sim_fxo_t *c);

int sim_fxo_line_set(sim_fxo_t *c, int port, const struct sim_fxo_line *line);
int sim_fxo_line_get(sim_fxo_t *c, int port, struct sim_fxo_line_state *st);
/* Returns samples accepted (the rest is dropped when the FIFO is full) or -EINVAL. */
int sim_fxo_line_audio_in(sim_fxo_t *c, int port, const int16_t *pcm, int n);
/* Returns samples copied (up to max) or -EINVAL. */
int sim_fxo_line_audio_out(sim_fxo_t *c, int port, int16_t *pcm, int max);
int sim_fxo_tick(sim_fxo_t *c, int nsamples);

#endif
