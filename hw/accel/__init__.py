"""The assembled accelerator: instruction set, tile DMA, sequencer, tile and top."""
