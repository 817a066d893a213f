"""Between conversion and training: splits, weights, normalisation, truth-leak guard."""
