"""Site-adaptive models: collect candidate frames, label them, fine-tune on the box, validate, activate."""
