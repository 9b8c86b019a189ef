"""Pure core: data, decisions, codecs and classifiers. No I/O, no clock, no client library."""
