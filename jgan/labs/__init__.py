"""Labs: studies built on the training core, each making one of GANs' known hard problems measurable.

* :mod:`jgan.labs.dynamics`: game dynamics (the bilinear game, the Dirac-GAN, update rules, spectra);
* :mod:`jgan.labs.divergence`: variational divergence estimation (f-GAN, WGAN) against closed forms;
* :mod:`jgan.labs.latent`, :mod:`jgan.labs.latent_figures`, :mod:`jgan.labs.attributes`: latent-space
  interpolation, walks, vector arithmetic and memorisation checks;
* :mod:`jgan.labs.sweep` (with :mod:`~jgan.labs.sweep_spec`, :mod:`~jgan.labs.sweep_scoring`,
  :mod:`~jgan.labs.sweep_report`): reproducible sweeps over config values with their results tables;
* :mod:`jgan.labs.mode_collapse`: the 2-D ring / grid protocol and one preset per fix.

Labs import the core (``jgan.*``); the core never imports a lab.
"""
