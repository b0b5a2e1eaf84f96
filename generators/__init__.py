"""Generator adapters that realise interventions on generative models.

Class-conditional latent generators (:mod:`generators.base`): BigGAN
(:mod:`generators.biggan`) and a small CPU-trainable GAN (:mod:`generators.small_gan`),
steered along GANSpace directions (:mod:`generators.directions`) by GenInt's latent
strategies (:mod:`generators.strategies`); and the counterfactual generative network
(:mod:`generators.cgn`), whose mechanisms take labels one can intervene on.
"""
