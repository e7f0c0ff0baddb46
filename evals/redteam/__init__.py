"""Red-teaming with garak: driving it against any gemmawatch target and importing its report."""
