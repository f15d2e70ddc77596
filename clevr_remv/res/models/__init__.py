"""Referring-expression segmentation models (torch extra): a registry, the CNN-LSTM baseline,
LAVT, their tokenizers, and the training loop behind ``clevr-remv benchmark``.

Every model maps ``(image, tokens, token_mask)`` to logits of shape (B, 2, H, W) (background,
referent) at the image's resolution; images are float RGB in [0, 1] (each model normalises them).
"""
