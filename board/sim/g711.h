/* g711.h - G.711 A-law for the FXO codec model (8 kHz, 16-bit linear at the line side). */
#ifndef CALLBOX_G711_H
#define CALLBOX_G711_H

#include <stdint.h>

void cb_g711_init(void);
uint8_t cb_alaw_encode(int16_t s);
int16_t cb_alaw_decode(uint8_t a);

#endif
