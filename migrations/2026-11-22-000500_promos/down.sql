DROP TABLE applied_promotion_drawdowns;
DROP TABLE applied_promotion_cycles;
DROP TABLE applied_promotions;
DROP TABLE credit_promotions;
DROP TABLE reward_redemptions;
DROP TABLE promo_baskets;
DROP TABLE promo_rewards;
DROP TABLE billing_promos;
