"""Software of the assembled accelerator: assembler, HBM allocator, compiler, machine model, runtime."""
