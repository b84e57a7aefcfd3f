"""CallBox drivers layer: the C drivers of the E1 and FXO cards behind cffi (drivers/build_ffi.py).

Python API (the board layer opens the cards; everything above uses these objects):
- `drivers.e1.E1Card` / `Span`: configure, status (raw + debounced alarms), counters, loopbacks, error
  injection, PRBS, D-channel frames (`dchan_send(bytes)`, `dchan_recv() -> list[bytes]`), CAS ABCD bits,
  and the TDM DMA ring as numpy views (`rx_block(n)`, `tx_block(n)`: (spans*32, n) uint8 A-law).
- `drivers.fxo.FxoCard` / `Port`: hook, on-hook monitor, hardware gain, ring parameters, status, and
  timestamped events (`events() -> list[FxoEvent]`), DMA ring views (ports, n).
- `drivers.tdm.TdmPort`: all voice channels of a board as one (channels, n) block per tick: the media
  engine's port (`read(n)`, `write(codes)`, `channel(span=, chan=)`, `channel(port=)`).
- `drivers.hw`: the same cards on real hardware (spidev + UIO).
"""
